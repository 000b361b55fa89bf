"""HTTP views of payments: validate, call a service, serialize. The member comes from the gateway."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payments import selectors, services
from payments.serializers import (
    ChargedPaymentsQuerySerializer,
    CompletePaymentSerializer,
    OpenPaymentSerializer,
    PaymentSerializer,
)
from shared.internal_auth import IsInternal
from shared.openapi import shop_errors
from shared.serializers import answer_writer, validator

#: A payment's answer, as PaymentSerializer writes it.
payment_answer = answer_writer(PaymentSerializer)

# The hot paths' input, validated by one serializer per process (shared.serializers.validator).
_open_input = validator(OpenPaymentSerializer)
_complete_input = validator(CompletePaymentSerializer)


class OpenPaymentView(APIView):
    @extend_schema(
        request=OpenPaymentSerializer,
        responses={201: PaymentSerializer, 200: PaymentSerializer},
        summary="Open a payment for one's own order (the amount is the order's)",
    )
    @shop_errors(404, 409)
    def post(self, request: Request) -> Response:
        payment, created = services.open_payment(member_id=request.user.member_id, **_open_input(request.data))
        return Response(payment_answer(payment), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CompletePaymentView(APIView):
    @extend_schema(
        request=CompletePaymentSerializer,
        responses={200: PaymentSerializer},
        summary="Complete the order's payment with a card (402 if declined)",
    )
    @shop_errors(402, 404, 409)
    def put(self, request: Request, order_id: int) -> Response:
        card_number = _complete_input(request.data)["card_number"]
        payment = services.complete_payment(
            member_id=request.user.member_id, order_id=order_id, card_number=card_number
        )
        return Response(payment_answer(payment))


@extend_schema(exclude=True)
class ChargedPaymentsView(APIView):
    """Internal: payments still charged (COMPLETED) whose last change falls in ``[since, until)``.

    The order service's reconciliation compares them with its orders.
    """

    permission_classes = [IsInternal]

    def post(self, request: Request) -> Response:
        s = ChargedPaymentsQuerySerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response({"payments": selectors.charged_payments(**s.validated_data)})

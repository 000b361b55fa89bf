"""HTTP views of orders: validate, call a service, serialize. The member comes from the gateway."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from wishlist import services as wishlist_services

from orders import selectors, services
from orders.serializers import (
    OrderIdSerializer,
    OrderSerializer,
    PaymentHoldSerializer,
    PlaceOrderSerializer,
    WishlistOrderSerializer,
    payment_view_answer,
)
from shared.errors import PermissionDenied, ValidationFailed
from shared.internal_auth import IsInternal
from shared.metrics import count_order_outcome
from shared.openapi import shop_errors
from shared.serializers import answer_writer, validator

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": 128},
    OpenApiParameter.HEADER,
    required=False,
    description="Retrying with the same key returns the same order instead of placing a second one.",
)


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None or key == "":
        return None
    if len(key) > 128 or not key.isprintable():
        raise ValidationFailed(fields={"Idempotency-Key": ["At most 128 printable characters."]})
    return key


#: An order's answer, as OrderSerializer writes it.
order_answer = answer_writer(OrderSerializer)

# The hot paths' input, validated by one serializer per process (shared.serializers.validator).
_place_input = validator(PlaceOrderSerializer)
_order_id_input = validator(OrderIdSerializer)
_hold_input = validator(PaymentHoldSerializer)


def _placed(order, created: bool) -> Response:
    return Response(order_answer(order), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PlaceOrderView(APIView):
    @extend_schema(
        request=PlaceOrderSerializer,
        responses={201: OrderSerializer, 200: OrderSerializer},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Place an order (reserves the stock at once)",
    )
    @shop_errors(409, 422)
    @count_order_outcome
    def post(self, request: Request) -> Response:
        # Most clicks of a drop come after the last unit is gone: answer those before any
        # validation or I/O when the stock gate said so a moment ago (see clients.known_sold_out).
        key = idempotency_key(request)
        services.refuse_if_known_sold_out(request.data, idempotency_key=key)
        body = _place_input(request.data)
        order, created = services.place_order(
            member_id=request.user.member_id,
            lines=[services.LineRequest(**line) for line in body["lines"]],
            idempotency_key=key,
        )
        return _placed(order, created)


class WishlistOrderView(APIView):
    @extend_schema(
        request=WishlistOrderSerializer,
        responses={201: OrderSerializer, 200: OrderSerializer},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Order the wishlist (all of it, or the variants named); all or nothing",
    )
    @shop_errors(409, 422)
    @count_order_outcome
    def post(self, request: Request) -> Response:
        body = WishlistOrderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order, created = wishlist_services.order_wishlist(
            member_id=request.user.member_id,
            variant_ids=body.validated_data.get("variant_ids"),
            idempotency_key=idempotency_key(request),
        )
        return _placed(order, created)


class CancelOrderView(APIView):
    @extend_schema(request=OrderIdSerializer, responses={200: OrderSerializer}, summary="Cancel an unpaid order")
    @shop_errors(404, 409)
    def put(self, request: Request) -> Response:
        order_id = _order_id_input(request.data)["order_id"]
        member_id = request.user.member_id
        order = services.cancel_order(order_id=order_id, member_id=member_id, actor=f"member:{member_id}")
        return Response(order_answer(order))


class RefundOrderView(APIView):
    @extend_schema(request=OrderIdSerializer, responses={202: OrderSerializer}, summary="Ask for a paid order's refund")
    @shop_errors(404, 409)
    def put(self, request: Request) -> Response:
        order_id = _order_id_input(request.data)["order_id"]
        member_id = request.user.member_id
        order = services.request_refund(order_id=order_id, member_id=member_id, actor=f"member:{member_id}")
        return Response(order_answer(order), status=status.HTTP_202_ACCEPTED)


class OrderDetailView(APIView):
    @extend_schema(responses={200: OrderSerializer}, summary="One of one's own orders")
    @shop_errors(404)
    def get(self, request: Request, order_id: int) -> Response:
        order = selectors.get_member_order(member_id=request.user.member_id, order_id=order_id)
        return Response(order_answer(order))


class MemberOrdersView(generics.ListAPIView):
    serializer_class = OrderSerializer

    @extend_schema(summary="One's own orders, newest first (a page)")
    @shop_errors(403, 404)
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if self.kwargs["member_id"] != self.request.user.member_id:
            raise PermissionDenied("You may only list your own orders.")
        return selectors.member_orders(member_id=self.kwargs["member_id"])


@extend_schema(exclude=True)
class InternalOrderView(APIView):
    """For the payment service: the order's member, status, total and deadline (not its lines)."""

    permission_classes = [IsInternal]

    def get(self, request: Request, order_id: int) -> Response:
        return Response(payment_view_answer(selectors.payment_view(order_id=order_id)))


@extend_schema(exclude=True)
class InternalPaymentHoldView(APIView):
    """For the payment service, before it charges: hold the order against a cancel."""

    permission_classes = [IsInternal]

    def post(self, request: Request, order_id: int) -> Response:
        payment_id = _hold_input(request.data)["payment_id"]
        held_until = services.hold_for_payment(order_id=order_id, payment_id=payment_id)
        return Response({"order_id": order_id, "payment_id": payment_id, "held_until": held_until.isoformat()})

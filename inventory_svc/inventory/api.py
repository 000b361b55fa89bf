"""The inventory's internal API (service to service only): reserve, release, sell, stock reads."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors, serializers, services
from shared.errors import SoldOut
from shared.internal_auth import IsInternal
from shared.serializers import validator

# The hot paths' input, validated by one serializer per process (shared.serializers.validator).
_reserve_input = validator(serializers.ReserveSerializer)
_release_input = validator(serializers.ReleaseSerializer)
_sell_input = validator(serializers.SellSerializer)


def _caller(request) -> str:
    return request.META.get("HTTP_X_CALLER", "internal")


@extend_schema(exclude=True)
class ReservationsView(APIView):
    permission_classes = [IsInternal]

    def post(self, request):
        answer = services.reserve_stock(**_reserve_input(request.data))
        return Response(answer, status=201)


@extend_schema(exclude=True)
class ReleaseView(APIView):
    permission_classes = [IsInternal]

    def post(self, request, order_id: int):
        reason = _release_input(request.data or {})["reason"]
        return Response(services.release_reservation(order_id=order_id, reason=reason, actor=_caller(request)))


@extend_schema(exclude=True)
class StockView(APIView):
    """POST: counts of many variants. PUT: commit a paid order's reservation as sold."""

    permission_classes = [IsInternal]

    def post(self, request):
        s = serializers.StockQuerySerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response({"items": selectors.stock_of_variants(s.validated_data["variant_ids"])})

    def put(self, request):
        answer = services.sell_reservation(order_id=_sell_input(request.data)["order_id"], actor=_caller(request))
        if answer["status"] == "SELL_FAILED":
            raise SoldOut(
                "The reservation was released and its units are gone.",
                order_id=answer["order_id"],
                variant_id=answer.get("variant_id"),
            )
        return Response(answer)


@extend_schema(exclude=True)
class RegisterStockView(APIView):
    permission_classes = [IsInternal]

    def post(self, request):
        s = serializers.RegisterStockSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response(services.register_stock(**s.validated_data, actor=_caller(request)))


@extend_schema(exclude=True)
class ReservationLookupView(APIView):
    """Reservation states by order (``order_ids``), and ACTIVE ones made in ``[active_since, active_until)``.

    The order service's reconciliation compares them with its orders.
    """

    permission_classes = [IsInternal]

    def post(self, request):
        s = serializers.ReservationLookupSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = s.validated_data
        answer = {"reservations": selectors.reservation_states(data.get("order_ids") or [])}
        if "active_since" in data:
            answer["active"] = selectors.active_reservations(since=data["active_since"], until=data["active_until"])
        return Response(answer)

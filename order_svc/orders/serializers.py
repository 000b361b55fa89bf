"""Orders in and out of HTTP: the shapes of SPEC.md."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from orders.models import Order, OrderLine
from shared import serializers as shared_serializers


def line_quantity(too_many: str) -> serializers.IntegerField:
    """A quantity of one variant: 1 to ORDER_MAX_LINE_QUANTITY (read when the form is made).

    ``too_many`` is the message past the limit, with ``{max_value}`` in it. The bound is on
    the field, not in a check after it, so the API document states it too.
    """
    return serializers.IntegerField(
        min_value=1, max_value=settings.ORDER_MAX_LINE_QUANTITY, error_messages={"max_value": too_many}
    )


class LineInSerializer(serializers.Serializer):
    variant_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**super().get_fields(), "quantity": line_quantity("At most {max_value} per line.")}


class PlaceOrderSerializer(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        # A ListField (not many=True) so errors name "lines" and "lines.N.field" plainly.
        lines = serializers.ListField(
            child=LineInSerializer(),
            min_length=1,
            max_length=settings.ORDER_MAX_LINES,
            error_messages={"min_length": "At least one line is needed.", "max_length": "At most {max_length} lines."},
        )
        return {**super().get_fields(), "lines": lines}

    def validate_lines(self, lines: list[dict]) -> list[dict]:
        seen: set[int] = set()
        errors: list[dict] = []
        for line in lines:
            duplicate = line["variant_id"] in seen
            seen.add(line["variant_id"])
            errors.append({"variant_id": ["This variant is already on another line."]} if duplicate else {})
        if any(errors):
            raise serializers.ValidationError(errors)
        return lines


class WishlistOrderSerializer(serializers.Serializer):
    variant_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, allow_empty=False
    )


class OrderIdSerializer(serializers.Serializer):
    order_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class OrderLineSerializer(shared_serializers.ModelSerializer):
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = OrderLine
        fields = ["variant_id", "cloth_id", "name", "size", "unit_price", "quantity"]


class OrderSerializer(shared_serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True, source="line_items")
    total = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = Order
        fields = ["order_id", "member_id", "status", "lines", "total", "created_at", "payment_deadline"]
        read_only_fields = fields  # an answer only: every field is always there


class PaymentHoldSerializer(serializers.Serializer):
    payment_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


_WHEN = serializers.DateTimeField()
_TOTAL = OrderSerializer._declared_fields["total"]


def payment_view_answer(row: dict) -> dict:
    """A :func:`orders.selectors.payment_view` row written by the fields OrderSerializer
    writes it with (a third of that serializer's cost: no instance, no lines)."""
    return {
        **row,
        "total": _TOTAL.to_representation(row["total"]),
        "created_at": _WHEN.to_representation(row["created_at"]),
        "payment_deadline": _WHEN.to_representation(row["payment_deadline"]),
    }

"""Orders in and out of HTTP: the shapes of SPEC.md."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from orders.models import Order, OrderLine


class LineInSerializer(serializers.Serializer):
    variant_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    quantity = serializers.IntegerField(min_value=1)

    def validate_quantity(self, value: int) -> int:
        if value > settings.ORDER_MAX_LINE_QUANTITY:
            raise serializers.ValidationError(f"At most {settings.ORDER_MAX_LINE_QUANTITY} per line.")
        return value


class PlaceOrderSerializer(serializers.Serializer):
    # A ListField (not many=True) so errors name "lines" and "lines.N.field" plainly.
    lines = serializers.ListField(child=LineInSerializer())

    def validate_lines(self, lines: list[dict]) -> list[dict]:
        if not lines:
            raise serializers.ValidationError("At least one line is needed.")
        if len(lines) > settings.ORDER_MAX_LINES:
            raise serializers.ValidationError(f"At most {settings.ORDER_MAX_LINES} lines.")
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


class OrderLineSerializer(serializers.ModelSerializer):
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = OrderLine
        fields = ["variant_id", "cloth_id", "name", "size", "unit_price", "quantity"]


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    total = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = Order
        fields = ["order_id", "member_id", "status", "lines", "total", "created_at", "payment_deadline"]


class PaymentHoldSerializer(serializers.Serializer):
    payment_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)

"""Input of the inventory's internal API, checked at the edge."""

from __future__ import annotations

from rest_framework import serializers

_BIGINT = 2**63 - 1


class IdField(serializers.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", _BIGINT)
        super().__init__(**kwargs)


class ReserveLineSerializer(serializers.Serializer):
    variant_id = IdField()
    quantity = serializers.IntegerField(min_value=1, max_value=1000)


class ReserveSerializer(serializers.Serializer):
    order_id = IdField()
    member_id = IdField()
    lines = ReserveLineSerializer(many=True, allow_empty=False, max_length=100)
    deadline = serializers.DateTimeField(required=False, allow_null=True)


class ReleaseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class SellSerializer(serializers.Serializer):
    order_id = IdField()


class StockQuerySerializer(serializers.Serializer):
    variant_ids = serializers.ListField(child=IdField(), allow_empty=True, max_length=1000)


class RegisterVariantSerializer(serializers.Serializer):
    variant_id = IdField()
    stock = serializers.IntegerField(min_value=0, max_value=10_000_000)
    size = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")


class RegisterStockSerializer(serializers.Serializer):
    cloth_id = IdField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    sale_starts_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    purchase_limit = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=0)
    variants = RegisterVariantSerializer(many=True, allow_empty=False)

    def validate_variants(self, value):
        ids = [v["variant_id"] for v in value]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("variant ids must be distinct")
        return value


class ReservationLookupSerializer(serializers.Serializer):
    """Either the reservations of some orders, or the ACTIVE ones made in a time window (or both)."""

    order_ids = serializers.ListField(child=IdField(), required=False, max_length=1000)
    active_since = serializers.DateTimeField(required=False)
    active_until = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if ("active_since" in attrs) != ("active_until" in attrs):
            raise serializers.ValidationError({"active_until": ["active_since and active_until go together."]})
        return attrs

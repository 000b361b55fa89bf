"""Input checks and response shapes of the catalog API."""

from __future__ import annotations

from rest_framework import serializers

_BIGINT = 2**63 - 1


class ClothListQuerySerializer(serializers.Serializer):
    category = serializers.CharField(max_length=100, required=False, allow_blank=True)
    brand = serializers.CharField(max_length=100, required=False, allow_blank=True)
    on_sale = serializers.BooleanField(required=False, allow_null=True, default=None)
    in_stock = serializers.BooleanField(required=False, allow_null=True, default=None)
    sort = serializers.ChoiceField(choices=["newest", "price", "-price"], required=False, default="newest")
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=100, required=False, default=20)


class ClothListItemSerializer(serializers.Serializer):
    cloth_id = serializers.IntegerField()
    name = serializers.CharField()
    brand = serializers.CharField()
    category = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    image_url = serializers.CharField()
    sale_starts_at = serializers.DateTimeField(allow_null=True)
    on_sale = serializers.BooleanField()
    in_stock = serializers.BooleanField()


class ClothPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ClothListItemSerializer(many=True)


class VariantStockSerializer(serializers.Serializer):
    variant_id = serializers.IntegerField()
    size = serializers.CharField()
    stock = serializers.IntegerField()


class ClothDetailSerializer(ClothListItemSerializer):
    description = serializers.CharField()
    images = serializers.ListField(child=serializers.CharField())
    purchase_limit = serializers.IntegerField()
    variants = VariantStockSerializer(many=True)


class DetailsQuerySerializer(serializers.Serializer):
    variant_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=_BIGINT), required=False, default=list, max_length=1000
    )
    cloth_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=_BIGINT), required=False, default=list, max_length=1000
    )

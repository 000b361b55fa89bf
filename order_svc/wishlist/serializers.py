"""Wishlist items in and out of HTTP."""

from __future__ import annotations

from orders.serializers import line_quantity
from rest_framework import serializers

from wishlist.models import WishlistItem


class ItemInSerializer(serializers.Serializer):
    variant_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**super().get_fields(), "quantity": line_quantity("At most {max_value} of one item.")}


class VariantIdSerializer(serializers.Serializer):
    variant_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = WishlistItem
        fields = ["variant_id", "cloth_id", "name", "size", "quantity"]


class WishlistSerializer(serializers.Serializer):
    items = ItemSerializer(many=True)

"""Wishlist items in and out of HTTP."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from wishlist.models import WishlistItem


class ItemInSerializer(serializers.Serializer):
    variant_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    quantity = serializers.IntegerField(min_value=1)

    def validate_quantity(self, value: int) -> int:
        if value > settings.ORDER_MAX_LINE_QUANTITY:
            raise serializers.ValidationError(f"At most {settings.ORDER_MAX_LINE_QUANTITY} of one item.")
        return value


class VariantIdSerializer(serializers.Serializer):
    variant_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = WishlistItem
        fields = ["variant_id", "cloth_id", "name", "size", "quantity"]


class WishlistSerializer(serializers.Serializer):
    items = ItemSerializer(many=True)

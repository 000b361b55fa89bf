"""Reads of wishlists."""

from __future__ import annotations

from django.db.models import QuerySet

from wishlist.models import WishlistItem


def member_items(*, member_id: int) -> QuerySet[WishlistItem]:
    return WishlistItem.objects.filter(member_id=member_id).order_by("added_at", "id")

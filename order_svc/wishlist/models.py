"""A member's wishlist: variants they want, with the quantity, ordered later in one go."""

from __future__ import annotations

from django.db import models


class WishlistItem(models.Model):
    member_id = models.BigIntegerField()
    variant_id = models.BigIntegerField()
    # Copied from the catalog when added, so reading the wishlist costs no catalog call.
    cloth_id = models.BigIntegerField()
    name = models.CharField(max_length=200)
    size = models.CharField(max_length=32)
    quantity = models.PositiveIntegerField()
    added_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["member_id", "variant_id"], name="wishlist_variant_once_per_member"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="wishlist_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"member {self.member_id}: {self.quantity} x variant {self.variant_id}"

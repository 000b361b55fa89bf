"""Clothes and their variants (sizes) as the shop shows them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Cloth(models.Model):
    """A garment for sale; a drop is one with a sale start and a per-member purchase limit."""

    name = models.CharField(max_length=200)
    brand = models.CharField(max_length=100, blank=True, default="", db_index=True)
    category = models.CharField(max_length=100, blank=True, default="", db_index=True)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2)
    image_url = models.URLField(max_length=500, blank=True, default="")
    images = models.JSONField(default=list, blank=True)
    sale_starts_at = models.DateTimeField(null=True, blank=True, help_text="empty: on sale now")
    purchase_limit = models.PositiveIntegerField(
        null=True, blank=True, default=0, help_text="units per member; 0 = none"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(price__gte=0), name="cloth_price_not_negative")]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """One size of a cloth: the unit that is stocked, reserved and sold."""

    cloth = models.ForeignKey(Cloth, on_delete=models.CASCADE, related_name="variants")
    size = models.CharField(max_length=32)
    # What the shop shows; the inventory service owns the real count and reports it (StockChanged).
    shown_stock = models.IntegerField(default=0)
    stock_version = models.BigIntegerField(default=0, editable=False)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "id"]
        constraints = [models.UniqueConstraint(fields=["cloth", "size"], name="variant_size_once_per_cloth")]

    def __str__(self) -> str:
        return f"{self.cloth.name} {self.size}" if self._state.fields_cache.get("cloth") else self.size

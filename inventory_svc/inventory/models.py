"""Stock as the system of record: counts per variant, reservations, and the ledger of every movement.

Redis (the gate, see ``gate.py``) decides first-come-first-served in front of these tables;
PostgreSQL has the last word: its guarded updates and the CHECK constraints below make an
oversold unit impossible even when Redis is wrong.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class StockItem(models.Model):
    """One variant's units: ``total`` owned, of which ``reserved`` held for orders and ``sold``."""

    variant_id = models.BigIntegerField(unique=True)
    cloth_id = models.BigIntegerField(db_index=True)
    # Copies of the catalog's words for people (the admin), kept by ClothCreated/ClothUpdated.
    cloth_name = models.CharField(max_length=200, blank=True, default="")
    size = models.CharField(max_length=32, blank=True, default="")
    total = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    sold = models.IntegerField(default=0)
    # Bumped by every change, so consumers of StockChanged can drop an older, late event.
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cloth_id", "variant_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total__gte=0) & Q(reserved__gte=0) & Q(sold__gte=0), name="stock_counts_not_negative"
            ),
            models.CheckConstraint(condition=Q(reserved__lte=F("total") - F("sold")), name="stock_never_oversold"),
        ]

    def __str__(self) -> str:
        if self.cloth_name:
            return f"{self.cloth_name} {self.size} (variant {self.variant_id})"
        return f"variant {self.variant_id} (cloth {self.cloth_id})"

    @property
    def available(self) -> int:
        return self.total - self.reserved - self.sold


class ClothRule(models.Model):
    """What the gate must know of a cloth: when its sale opens and how many units one member may hold."""

    cloth_id = models.BigIntegerField(unique=True)
    sale_starts_at = models.DateTimeField(null=True, blank=True)
    purchase_limit = models.PositiveIntegerField(default=0, help_text="0 = no limit")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"cloth {self.cloth_id}"


class ReservationState(models.TextChoices):
    ACTIVE = "ACTIVE", "active"
    RELEASED = "RELEASED", "released"
    SOLD = "SOLD", "sold"
    RETURNED = "RETURNED", "returned"


class Reservation(models.Model):
    """Units held for one order, until it is paid (SOLD), ended (RELEASED) or refunded (RETURNED)."""

    order_id = models.BigIntegerField(unique=True)
    member_id = models.BigIntegerField(db_index=True)
    cloth_ids = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=ReservationState.choices, default=ReservationState.ACTIVE)
    deadline = models.DateTimeField()
    release_reason = models.CharField(max_length=64, blank=True, default="")
    # Set when a payment came for a released reservation and its units were gone.
    sell_failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["deadline"], name="reservation_active_deadline", condition=Q(state="ACTIVE")),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id} ({self.state})"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    variant_id = models.BigIntegerField()
    cloth_id = models.BigIntegerField(db_index=True)
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["reservation", "variant_id"], name="reservation_line_once_per_variant"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x variant {self.variant_id}"


class MovementKind(models.TextChoices):
    RESTOCK = "restock", "restock"  # total += quantity
    CORRECT = "correct", "correction"  # total += quantity (signed)
    RESERVE = "reserve", "reserve"  # reserved += quantity
    RELEASE = "release", "release"  # reserved -= quantity
    SELL = "sell", "sell"  # reserved -= quantity, sold += quantity
    RETURN = "return", "return"  # sold -= quantity


class StockMovement(models.Model):
    """The ledger: replaying it gives every counter of every StockItem (``check_invariants`` does)."""

    variant_id = models.BigIntegerField(db_index=True)
    cloth_id = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=MovementKind.choices)
    quantity = models.IntegerField()
    order_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    cause = models.CharField(max_length=64, blank=True, default="")
    actor = models.CharField(max_length=128, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity} of variant {self.variant_id}"

"""Payments: one per attempt to pay an order, with the provider's references."""

from __future__ import annotations

import uuid

from django.db import models


class PaymentStatus(models.TextChoices):
    PENDING = "PENDING", "pending"
    COMPLETED = "COMPLETED", "completed"
    FAILED = "FAILED", "failed"
    REFUND_PENDING = "REFUND_PENDING", "refund pending"
    REFUNDED = "REFUNDED", "refunded"
    CANCELLED = "CANCELLED", "cancelled"


#: States in which money was taken for the order (and maybe is on its way back).
CHARGED_STATES = (PaymentStatus.COMPLETED, PaymentStatus.REFUND_PENDING, PaymentStatus.REFUNDED)


def _new_key() -> str:
    return uuid.uuid4().hex


class Payment(models.Model):
    payment_id = models.BigAutoField(primary_key=True)
    order_id = models.BigIntegerField()
    member_id = models.BigIntegerField()
    # From the order service, never from the client.
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    provider = models.CharField(max_length=100)
    provider_reference = models.CharField(max_length=128, blank=True, default="")
    # Sent with every charge attempt of this payment: the provider charges a key once at most.
    idempotency_key = models.CharField(max_length=64, unique=True, default=_new_key)
    attempts = models.PositiveIntegerField(default=0)
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    failure_reason = models.CharField(max_length=200, blank=True, default="")
    refund_reference = models.CharField(max_length=128, blank=True, default="")
    refund_reason = models.CharField(max_length=32, blank=True, default="")
    # The order's status as this service last learnt it (when the payment opened, then from
    # the order's events): for people reading the admin, never for a decision.
    order_status = models.CharField(max_length=20, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-payment_id"]
        constraints = [
            # Invariant 7: one charge per order at most, whatever the retries and races.
            models.UniqueConstraint(
                fields=["order_id"],
                condition=models.Q(status__in=["COMPLETED", "REFUND_PENDING", "REFUNDED"]),
                name="payment_one_charge_per_order",
            ),
            # One open payment per order: a second POST /payment returns the first.
            models.UniqueConstraint(
                fields=["order_id"], condition=models.Q(status="PENDING"), name="payment_one_open_per_order"
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
        ]
        indexes = [models.Index(fields=["order_id"], name="payment_order")]

    def __str__(self) -> str:
        return f"payment {self.payment_id} of order {self.order_id} ({self.status})"

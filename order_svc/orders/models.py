"""Orders, their lines and the record of every state change they went through."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.utils import timezone

from shared.reads import prepare


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "PENDING_PAYMENT", "pending payment"
    PAID = "PAID", "paid"
    REFUND_REQUESTED = "REFUND_REQUESTED", "refund requested"
    REFUNDED = "REFUNDED", "refunded"
    CANCELLED = "CANCELLED", "cancelled"
    EXPIRED = "EXPIRED", "expired"
    PAYMENT_FAILED = "PAYMENT_FAILED", "payment failed"


#: The state machine: the only moves an order may make. Anything else is IllegalTransition.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING_PAYMENT: frozenset(
        {OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.PAYMENT_FAILED}
    ),
    OrderStatus.PAID: frozenset({OrderStatus.REFUND_REQUESTED}),
    OrderStatus.REFUND_REQUESTED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.REFUNDED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.PAYMENT_FAILED: frozenset(),
}

#: States in which the order's reservation was given back without a sale.
RELEASED_STATES = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.PAYMENT_FAILED})


class Order(models.Model):
    # The id is drawn from this column's sequence before the row exists: the inventory
    # reservation is keyed by it, and it is made before the order is written.
    order_id = models.BigAutoField(primary_key=True)
    member_id = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    payment_deadline = models.DateTimeField()
    idempotency_key = models.CharField(max_length=128, blank=True, default="")
    # Hash of the request body that first used the idempotency key: same key, other body -> refused.
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # Why a refund was asked for (member_request, stock_unavailable, admin...): the saga needs
    # to know whether stock must come back when the refund completes.
    refund_reason = models.CharField(max_length=32, blank=True, default="")
    # A payment charging this order holds it until then: a cancel (or expiry) waits or is
    # refused, so "paid" and "cancelled" are never both told. Moot once the order leaves
    # PENDING_PAYMENT (PaymentCompleted / PaymentFailed applied).
    payment_hold_id = models.BigIntegerField(null=True, blank=True)
    payment_hold_until = models.DateTimeField(null=True, blank=True)
    # The payment that moved the order to PAID: another payment for it is money to send back.
    paid_by_payment_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-order_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member_id", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="order_idempotency_key_once_per_member",
            ),
            models.CheckConstraint(condition=models.Q(total__gte=0), name="order_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=["member_id", "-created_at"], name="order_member_newest"),
            # The expiry sweep: pending orders by deadline.
            models.Index(
                fields=["payment_deadline"],
                name="order_pending_deadline",
                condition=models.Q(status="PENDING_PAYMENT"),
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id} ({self.status})"

    # Not a column: the lines the order was just written with, or read with in bulk (the
    # expiry sweep), so its answer and its events need no query for them.
    known_lines: list[OrderLine] | None = None

    @property
    def line_items(self) -> Iterable[OrderLine]:
        """The order's lines: ``known_lines`` when set, else ``lines`` prefetched, else one read (kept)."""
        if self.known_lines is None:
            if "lines" in getattr(self, "_prefetched_objects_cache", {}):
                return self.lines.all()
            self.known_lines = _lines_of_order(order_id=self.order_id)  # an order's lines never change
        return self.known_lines

    def can_move_to(self, status: str) -> bool:
        return status in ALLOWED_TRANSITIONS.get(self.status, frozenset())

    def payment_in_progress(self, now) -> bool:
        return self.payment_hold_until is not None and self.payment_hold_until > now


class OrderLine(models.Model):
    order = models.ForeignKey(Order, related_name="lines", on_delete=models.CASCADE)
    variant_id = models.BigIntegerField()
    cloth_id = models.BigIntegerField()
    name = models.CharField(max_length=200)
    size = models.CharField(max_length=32)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "variant_id"], name="order_line_variant_once"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="order_line_quantity_positive"),
        ]
        indexes = [
            models.Index(fields=["variant_id"], name="order_line_variant"),
            models.Index(fields=["cloth_id"], name="order_line_cloth"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.name} {self.size}"


class OrderTransition(models.Model):
    """One state change of an order and what caused it (a request, an event, a job, an admin)."""

    order = models.ForeignKey(Order, related_name="transitions", on_delete=models.CASCADE)
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20)
    cause = models.CharField(max_length=64)
    event_id = models.UUIDField(null=True, blank=True)
    actor = models.CharField(max_length=100, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status} ({self.cause})"


class PaymentSentBack(models.Model):
    """A payment that arrived for an order that could not take it (ended, or paid by another
    payment), whose refund the order asked for: once per payment, which the constraint holds."""

    order = models.ForeignKey(Order, related_name="payments_sent_back", on_delete=models.CASCADE)
    payment_id = models.BigIntegerField()
    reason = models.CharField(max_length=32)  # late_payment, duplicate_payment
    event_id = models.UUIDField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["payment_id"], name="payment_sent_back_once")]

    def __str__(self) -> str:
        return f"payment {self.payment_id} of order {self.order_id} sent back ({self.reason})"


_lines_of_order = prepare(lambda order_id: OrderLine.objects.filter(order_id=order_id))

"""Reads of orders: one's own, by id, pages of a member's orders."""

from __future__ import annotations

from django.db.models import QuerySet

from orders.models import Order
from shared.errors import NotFound
from shared.reads import prepare


def orders_with_lines() -> QuerySet[Order]:
    return Order.objects.prefetch_related("lines")


def get_order(*, order_id: int) -> Order:
    try:
        return orders_with_lines().get(order_id=order_id)
    except Order.DoesNotExist:
        raise NotFound("No such order.") from None


#: What the payment service reads of an order (GET /internal/orders/{id}): never its lines.
PAYMENT_VIEW_FIELDS = ("order_id", "member_id", "status", "total", "created_at", "payment_deadline")


_payment_view = prepare(lambda order_id: Order.objects.filter(order_id=order_id).values(*PAYMENT_VIEW_FIELDS)[:1])

#: An order by its id, locked as it is read (inside a transaction); with its member's id too.
locked_order = prepare(lambda order_id: Order.objects.select_for_update().filter(order_id=order_id)[:1])
locked_member_order = prepare(
    lambda order_id, member_id: Order.objects.select_for_update().filter(order_id=order_id, member_id=member_id)[:1]
)


def payment_view(*, order_id: int) -> dict:
    """The order's own columns the payment service reads, from one query (no lines)."""
    row = _payment_view.first(order_id=order_id)
    if row is None:
        raise NotFound("No such order.")
    return row


def get_member_order(*, member_id: int, order_id: int) -> Order:
    """A member's own order; someone else's is reported exactly like a missing one."""
    try:
        return orders_with_lines().get(order_id=order_id, member_id=member_id)
    except Order.DoesNotExist:
        raise NotFound("No such order.") from None


def member_orders(*, member_id: int) -> QuerySet[Order]:
    """A member's orders, newest first, lines fetched in one more query (no N+1)."""
    return orders_with_lines().filter(member_id=member_id).order_by("-created_at", "-order_id")


#: The order a member placed with an Idempotency-Key (one at most: a constraint holds it).
#: Asked before every keyed placement, which finds none but on a retry: compiled once.
_by_idempotency_key = prepare(
    lambda member_id, idempotency_key: Order.objects.filter(member_id=member_id, idempotency_key=idempotency_key)[:1]
)


def find_by_idempotency_key(*, member_id: int, idempotency_key: str) -> Order | None:
    """The member's order placed with the key, or None; its lines are read when first asked for."""
    return _by_idempotency_key.first(member_id=member_id, idempotency_key=idempotency_key)

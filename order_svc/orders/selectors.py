"""Reads of orders: one's own, by id, pages of a member's orders."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from orders.models import Order
from shared.errors import NotFound


def orders_with_lines() -> QuerySet[Order]:
    return Order.objects.prefetch_related("lines")


def get_order(*, order_id: int) -> Order:
    try:
        return orders_with_lines().get(order_id=order_id)
    except Order.DoesNotExist:
        raise NotFound("No such order.") from None


#: What the payment service reads of an order (GET /internal/orders/{id}): never its lines.
_PAYMENT_FACTS = ("order_id", "member_id", "status", "total", "created_at", "payment_deadline")


def order_facts(*, order_id: int) -> dict:
    """The order's own facts as the API writes them, from one query and no serializer
    (a third of the serialized order's cost): the total a string with its cents, times in ISO 8601."""
    row = Order.objects.filter(order_id=order_id).values(*_PAYMENT_FACTS).first()
    if row is None:
        raise NotFound("No such order.")
    row["total"] = f"{row['total']:.2f}"
    for key in ("created_at", "payment_deadline"):
        row[key] = _iso(row[key])
    return row


def _iso(moment) -> str:
    """As DRF's DateTimeField writes it: in the current time zone, "+00:00" as "Z"."""
    text = timezone.localtime(moment).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def get_member_order(*, member_id: int, order_id: int) -> Order:
    """A member's own order; someone else's is reported exactly like a missing one."""
    try:
        return orders_with_lines().get(order_id=order_id, member_id=member_id)
    except Order.DoesNotExist:
        raise NotFound("No such order.") from None


def member_orders(*, member_id: int) -> QuerySet[Order]:
    """A member's orders, newest first, lines fetched in one more query (no N+1)."""
    return orders_with_lines().filter(member_id=member_id).order_by("-created_at", "-order_id")


def find_by_idempotency_key(*, member_id: int, idempotency_key: str) -> Order | None:
    return orders_with_lines().filter(member_id=member_id, idempotency_key=idempotency_key).first()

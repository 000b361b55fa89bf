"""The state machine, and what a member, staff or the payment service asks of an order.

Every state change goes through :func:`transition`, recorded with its cause. Here too:
cancelling, holding an order for the payment about to charge it, and asking for a refund
(``RefundRequested``, also announced by the saga when money must go back).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from collections.abc import Sequence
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from orders import clients, selectors
from orders.models import Order, OrderStatus, OrderTransition
from shared.contracts import Contract
from shared.contracts.order import OrderCancelled, OrderLine, RefundReason, RefundRequested
from shared.errors import IllegalTransition, NotFound, ShopError
from shared.messaging.events import outbox_rows, record_event
from shared.updates import save_fields

logger = logging.getLogger(__name__)


def transition(
    order: Order,
    to: str,
    *,
    cause: str,
    event_id: uuid.UUID | None = None,
    actor: str = "",
    also_saved: tuple[str, ...] = (),
    events: Sequence[Contract] = (),
) -> None:
    """Move a locked order to ``to``, or refuse. Every move is recorded with its cause.

    ``also_saved`` names other fields the caller set for this move, saved in the same update;
    ``events`` are what the move announces. The order's row, the transition that records the
    move and the events' outbox rows are written in one statement.
    """
    if not order.can_move_to(to):
        raise IllegalTransition(
            f"An order that is {order.status} cannot become {to}.", order_id=order.order_id, status=order.status
        )
    moved = OrderTransition(
        order=order, from_status=order.status, to_status=to, cause=cause, event_id=event_id, actor=actor
    )
    order.status = to
    save_fields(
        order, ["status", "refund_reason", "updated_at", *also_saved], inserting=[[moved], outbox_rows(*events)]
    )


def _locked(order_id: int, member_id: int | None = None) -> Order:
    if member_id is None:
        order = selectors.locked_order.first(order_id=order_id)
    else:
        order = selectors.locked_member_order.first(order_id=order_id, member_id=member_id)
    if order is None:
        raise NotFound("No such order.")
    return order


def order_facts(order: Order) -> dict:
    """What every order event carries (its contract's common fields): enough for the
    inventory to act without calling back."""
    return {
        "order_id": order.order_id,
        "member_id": order.member_id,
        "lines": [
            OrderLine(
                variant_id=line.variant_id, cloth_id=line.cloth_id, quantity=line.quantity, unit_price=line.unit_price
            )
            for line in order.line_items
        ],
    }


def cancel_order(*, order_id: int, member_id: int | None, actor: str) -> Order:
    """Cancel an unpaid order and give its stock back before answering.

    The release is asked of inventory at once, so the member's purchase limit is free when
    the cancel answers; ``OrderCancelled`` releases too (idempotent), which is what does it
    when inventory cannot be reached now. ``member_id`` None means staff (the admin): any order.
    """
    with transaction.atomic():
        order = _locked(order_id, member_id)
        if order.status in (OrderStatus.PAID, OrderStatus.REFUND_REQUESTED):
            raise IllegalTransition(
                "A paid order cannot be cancelled; ask for a refund (PUT /orders/refund).",
                order_id=order.order_id,
                status=order.status,
            )
        if order.status == OrderStatus.PENDING_PAYMENT and order.payment_in_progress(timezone.now()):
            raise IllegalTransition(
                "This order's payment is in progress; it cannot be cancelled now.",
                order_id=order.order_id,
                status=order.status,
            )
        transition(
            order,
            OrderStatus.CANCELLED,
            cause="cancelled",
            actor=actor,
            events=[OrderCancelled(**order_facts(order), reason="cancelled")],
        )
    logger.info("order %s cancelled by %s", order_id, actor)
    try:
        clients.release_stock(order_id=order_id, reason="cancelled")
    except ShopError as exc:
        logger.warning("order %s: stock not released at once (%s); OrderCancelled releases it", order_id, exc)
    return order  # as written: read again, it would be the same row and lines


def hold_for_payment(*, order_id: int, payment_id: int) -> dt.datetime:
    """Hold an order awaiting payment for the payment about to charge it (idempotent per payment).

    Asked by the payment service before it charges, under the order's row lock: a cancel
    that came first makes this 409 (nothing is charged), and one that comes after is 409
    itself while the hold stands (``ORDER_PAYMENT_HOLD_SECONDS``, or until the payment's
    outcome moves the order). So a buyer is never told both "paid" and "cancelled".
    Returns when the hold ends.

    A hold that passes is one ``UPDATE`` whose ``WHERE`` carries the checks: PostgreSQL
    takes the row's lock for it and, when a cancel held that lock first, checks them again
    on the row the cancel left. Only a hold refused there goes the long way (the row locked
    and read, in a transaction) to say why, or to hold after all when what refused it has
    since changed.
    """
    now = timezone.now()
    until = now + dt.timedelta(seconds=settings.ORDER_PAYMENT_HOLD_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            _hold_sql(),
            [payment_id, until, now, order_id, str(OrderStatus.PENDING_PAYMENT), now, now, payment_id],
        )
        held = cursor.rowcount == 1
    if not held:
        _hold_locked(order_id=order_id, payment_id=payment_id, now=now, until=until)
    logger.info("order %s held for payment %s", order_id, payment_id)
    return until


@functools.cache
def _hold_sql() -> str:
    meta, quote = Order._meta, connection.ops.quote_name

    def col(name: str) -> str:
        return quote(meta.get_field(name).column)

    return (
        f"UPDATE {quote(meta.db_table)} SET {col('payment_hold_id')} = %s, {col('payment_hold_until')} = %s, "
        f"{col('updated_at')} = %s WHERE {col('order_id')} = %s AND {col('status')} = %s "
        f"AND {col('payment_deadline')} > %s "
        f"AND ({col('payment_hold_until')} IS NULL OR {col('payment_hold_until')} <= %s "
        f"OR {col('payment_hold_id')} = %s)"
    )


def _hold_locked(*, order_id: int, payment_id: int, now: dt.datetime, until: dt.datetime) -> None:
    """The hold with the order locked and read: raises what refuses it, else holds."""
    with transaction.atomic():
        order = _locked(order_id)
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise IllegalTransition(
                f"This order is {order.status}; it does not await payment.", order_id=order_id, status=order.status
            )
        if order.payment_deadline <= now:
            raise IllegalTransition("This order's payment deadline has passed.", order_id=order_id, status=order.status)
        if order.payment_in_progress(now) and order.payment_hold_id != payment_id:
            raise IllegalTransition(
                "Another payment of this order is in progress.", order_id=order_id, status=order.status
            )
        order.payment_hold_id = payment_id
        order.payment_hold_until = until
        save_fields(order, ["payment_hold_id", "payment_hold_until", "updated_at"])


def request_refund(
    *, order_id: int, member_id: int | None, actor: str, reason: RefundReason = RefundReason.MEMBER_REQUEST
) -> Order:
    """Ask for a paid order's money back; the payment service refunds on ``RefundRequested``."""
    with transaction.atomic():
        order = _locked(order_id, member_id)
        request_refund_locked(order, reason=reason, actor=actor)
    logger.info("refund of order %s requested by %s (%s)", order_id, actor, reason)
    return order  # as written


def request_refund_locked(
    order: Order, *, reason: RefundReason, actor: str, event_id: uuid.UUID | None = None, payment_id: int | None = None
) -> None:
    if order.status != OrderStatus.PAID:
        raise IllegalTransition(
            f"Only a paid order can be refunded; this one is {order.status}.",
            order_id=order.order_id,
            status=order.status,
        )
    order.refund_reason = reason
    transition(
        order,
        OrderStatus.REFUND_REQUESTED,
        cause=f"refund:{reason}",
        event_id=event_id,
        actor=actor,
        events=[refund_requested_event(order, payment_id=payment_id, amount=order.total, reason=reason)],
    )


def refund_requested(order: Order, *, payment_id: int | None, amount: Decimal, reason: RefundReason) -> None:
    """Announce that the order's money must go back (the payment service refunds once)."""
    record_event(refund_requested_event(order, payment_id=payment_id, amount=amount, reason=reason))


def refund_requested_event(
    order: Order, *, payment_id: int | None, amount: Decimal, reason: RefundReason
) -> RefundRequested:
    return RefundRequested(
        order_id=order.order_id, member_id=order.member_id, payment_id=payment_id, amount=amount, reason=reason
    )

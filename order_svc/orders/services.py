"""Every write to an order: placing, cancelling, refunding, the saga's moves, expiry.

Each function is one transaction; every state change goes through :func:`_transition`
(the state machine) and announces itself through the outbox in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from orders import clients, selectors
from orders.models import RELEASED_STATES, Order, OrderLine, OrderStatus, OrderTransition, PaymentSentBack
from shared.errors import (
    IdempotencyKeyReused,
    IllegalTransition,
    NotFound,
    RequestInProgress,
    ShopError,
    SoldOut,
    UpstreamUnavailable,
    ValidationFailed,
)
from shared.messaging.events import record_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineRequest:
    variant_id: int
    quantity: int


# ---------------------------------------------------------------------------------------
# Placing an order: the hot path of a drop. One upstream call (reserve), one transaction.
# ---------------------------------------------------------------------------------------


def place_order(
    *,
    member_id: int,
    lines: list[LineRequest],
    idempotency_key: str | None = None,
    on_placed: Callable[[Order], None] | None = None,
) -> tuple[Order, bool]:
    """Reserve the lines' stock, then write the order and its ``OrderPlaced`` event.

    Returns ``(order, created)``; ``created`` is False when the Idempotency-Key names an
    order placed before. ``on_placed`` runs inside the order's transaction (the wishlist
    uses it to remove the ordered items in the same commit). Raises the inventory's 409s
    (``sold_out``...) with nothing written, ``ValidationFailed`` for unknown variants.
    """
    if not lines:
        raise ValidationFailed(fields={"lines": ["At least one line is needed."]})
    fingerprint = _fingerprint(lines)
    if idempotency_key:
        earlier = _earlier_order(member_id=member_id, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if earlier is not None:
            return earlier, False
    _refuse_remembered_sold_out(lines)
    details = _catalog_details(lines)
    attempt = _start_attempt(member_id=member_id, idempotency_key=idempotency_key)
    in_flight = _claim_or_wait(attempt, fingerprint=fingerprint)
    if in_flight is not None:
        return in_flight, False
    deadline = timezone.now() + dt.timedelta(seconds=settings.ORDER_PAYMENT_DEADLINE_SECONDS)
    _reserve(attempt, lines, deadline)
    try:
        with transaction.atomic():
            order = _write_order(attempt, lines, details, deadline=deadline, fingerprint=fingerprint)
            if on_placed is not None:
                on_placed(order)
    except Exception as exc:  # noqa: BLE001 - _not_written gives the stock back and raises or answers
        return _not_written(attempt, exc, fingerprint=fingerprint), False
    logger.info("order %s placed by member %s (%d lines, total %s)", order.order_id, member_id, len(lines), order.total)
    return order, True


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One try at placing an order: the id drawn for it, and its Idempotency-Key's claim.

    Its two undo steps are the only compensation of placing an order.
    """

    order_id: int
    member_id: int
    idempotency_key: str | None
    claim_key: str | None

    def release_stock(self) -> None:
        """Give the reservation back (it may exist); it also ends at its deadline."""
        _release_quietly(self.order_id, reason="order_not_placed")

    def drop_claim(self) -> None:
        """Free the Idempotency-Key, so a retry with it may try anew."""
        _drop_claim(self.claim_key)


def _start_attempt(*, member_id: int, idempotency_key: str | None) -> _Attempt:
    return _Attempt(
        order_id=_next_order_id(),
        member_id=member_id,
        idempotency_key=idempotency_key,
        claim_key=_claim_key(member_id, idempotency_key) if idempotency_key else None,
    )


def _claim_or_wait(attempt: _Attempt, *, fingerprint: str) -> Order | None:
    """Claim the attempt's Idempotency-Key; if a request with it is in flight, wait for its order."""
    if attempt.claim_key is None:
        return None
    claimed = _claim(attempt.claim_key, order_id=attempt.order_id, fingerprint=fingerprint)
    if claimed is None:
        return None
    return _wait_for_claimed_order(
        member_id=attempt.member_id,
        idempotency_key=attempt.idempotency_key,
        fingerprint=fingerprint,
        claimed=claimed,
        claim_key=attempt.claim_key,
    )


def _refuse_remembered_sold_out(lines: list[LineRequest]) -> None:
    """SoldOut at once when the gate called one of the variants sold out a moment ago."""
    sold_out = clients.known_sold_out([line.variant_id for line in lines])
    if sold_out is not None:
        raise SoldOut(**sold_out)


def _catalog_details(lines: list[LineRequest]) -> dict[int, clients.VariantInfo]:
    """The catalog's name, size, price and cloth of each line's variant; unknown ones refused."""
    details = clients.variant_details([line.variant_id for line in lines])
    unknown = {
        f"lines.{i}.variant_id": ["Unknown variant."] for i, line in enumerate(lines) if line.variant_id not in details
    }
    if unknown:
        raise ValidationFailed("Some items do not exist.", fields=unknown)
    return details


def _reserve(attempt: _Attempt, lines: list[LineRequest], deadline: dt.datetime) -> None:
    """Reserve the stock for the attempt's order id; on a refusal, nothing of the attempt is left."""
    try:
        clients.reserve_stock(
            order_id=attempt.order_id,
            member_id=attempt.member_id,
            lines=[{"variant_id": line.variant_id, "quantity": line.quantity} for line in lines],
            deadline=deadline,
        )
    except ShopError as exc:
        attempt.drop_claim()
        if exc.status_code >= 500:
            attempt.release_stock()  # no answer: the reservation may exist
        raise


def _write_order(
    attempt: _Attempt,
    lines: list[LineRequest],
    details: dict[int, clients.VariantInfo],
    *,
    deadline: dt.datetime,
    fingerprint: str,
) -> Order:
    """The order, its lines, its first transition and ``OrderPlaced`` (inside the caller's transaction)."""
    order = Order.objects.create(
        order_id=attempt.order_id,
        member_id=attempt.member_id,
        status=OrderStatus.PENDING_PAYMENT,
        total=sum((details[line.variant_id].price * line.quantity for line in lines), Decimal("0")),
        payment_deadline=deadline,
        idempotency_key=attempt.idempotency_key or "",
        request_fingerprint=fingerprint if attempt.idempotency_key else "",
    )
    order.known_lines = OrderLine.objects.bulk_create(
        [
            OrderLine(
                order=order,
                variant_id=line.variant_id,
                cloth_id=details[line.variant_id].cloth_id,
                name=details[line.variant_id].name,
                size=details[line.variant_id].size,
                unit_price=details[line.variant_id].price,
                quantity=line.quantity,
            )
            for line in lines
        ]
    )
    OrderTransition.objects.create(
        order=order, from_status="", to_status=order.status, cause="placed", actor=f"member:{attempt.member_id}"
    )
    record_event(
        "OrderPlaced",
        aggregate_type="order",
        aggregate_id=order.order_id,
        payload={**order_payload(order), "total": order.total, "payment_deadline": deadline.isoformat()},
    )
    return order


def _not_written(attempt: _Attempt, exc: Exception, *, fingerprint: str) -> Order:
    """The stock was reserved but the order not written: give the stock back, then answer.

    A request with the same Idempotency-Key that won the race to the row answers with its
    order; otherwise a ShopError is raised as it is, anything else as a 503.
    """
    attempt.release_stock()
    if isinstance(exc, IntegrityError) and attempt.idempotency_key:
        earlier = selectors.find_by_idempotency_key(
            member_id=attempt.member_id, idempotency_key=attempt.idempotency_key
        )
        if earlier is not None:
            return _same_body_or_refuse(earlier, fingerprint)
    attempt.drop_claim()
    if isinstance(exc, ShopError):
        raise exc
    order_id, member_id = attempt.order_id, attempt.member_id
    if isinstance(exc, IntegrityError):
        logger.error("order %s for member %s not written (%s); reservation released", order_id, member_id, exc)
    else:
        logger.error("order %s for member %s not written; reservation released", order_id, member_id, exc_info=exc)
    raise UpstreamUnavailable("The order could not be saved; its stock was given back. Try again.") from exc


def refuse_if_known_sold_out(data: object, *, idempotency_key: str | None = None) -> None:
    """Raise SoldOut at once if the body names a variant the stock gate just called sold out.

    Reads the raw body defensively: anything malformed is left to the serializer, which
    answers it with the proper field errors. A click carrying an Idempotency-Key is not
    checked here: it may be the retry of an order that won.
    """
    if idempotency_key:
        return
    lines = data.get("lines") if isinstance(data, dict) else None
    if not isinstance(lines, list) or not lines:
        return
    if len(lines) > settings.ORDER_MAX_LINES or not all(_plain_line(line) for line in lines):
        return
    variant_ids = [line["variant_id"] for line in lines]
    answer = clients.known_sold_out(variant_ids)
    if answer is not None:
        raise SoldOut(**answer)


def _plain_line(line: object) -> bool:
    if not isinstance(line, dict):
        return False
    variant_id, quantity = line.get("variant_id"), line.get("quantity")
    return (
        type(variant_id) is int
        and variant_id > 0
        and type(quantity) is int
        and 1 <= quantity <= settings.ORDER_MAX_LINE_QUANTITY
    )


def _fingerprint(lines: list[LineRequest]) -> str:
    canonical = json.dumps(sorted((line.variant_id, line.quantity) for line in lines))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _next_order_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s))", [Order._meta.db_table, "order_id"])
        return int(cursor.fetchone()[0])


def _claim_key(member_id: int, idempotency_key: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"orders:idempotency:{member_id}:{digest}"


def _claim(key: str, *, order_id: int, fingerprint: str) -> dict | None:
    """Claim the key for this attempt (SET NX). Returns the earlier claim if there was one."""
    value = {"order_id": order_id, "fingerprint": fingerprint}
    try:
        if cache.add(key, value, timeout=settings.ORDER_IDEMPOTENCY_TTL_SECONDS):
            return None
        return cache.get(key) or None
    except Exception as exc:  # noqa: BLE001 - the unique constraint still stops a second order
        logger.warning("idempotency claim not possible (%s); relying on the database constraint", exc)
        return None


def _drop_claim(key: str | None) -> None:
    if key is None:
        return
    try:
        cache.delete(key)
    except Exception as exc:  # noqa: BLE001 - the claim expires by itself
        logger.warning("idempotency claim %s not dropped (%s)", key, exc)


def _earlier_order(*, member_id: int, idempotency_key: str, fingerprint: str) -> Order | None:
    earlier = selectors.find_by_idempotency_key(member_id=member_id, idempotency_key=idempotency_key)
    return None if earlier is None else _same_body_or_refuse(earlier, fingerprint)


def _same_body_or_refuse(order: Order, fingerprint: str) -> Order:
    if order.request_fingerprint and order.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(order_id=order.order_id)
    return order


def _wait_for_claimed_order(
    *, member_id: int, idempotency_key: str, fingerprint: str, claimed: dict, claim_key: str
) -> Order:
    """A request with the same key is in flight: wait briefly for its order, never reserve twice."""
    if claimed.get("fingerprint") != fingerprint:
        raise IdempotencyKeyReused()
    for _ in range(40):
        earlier = _earlier_order(member_id=member_id, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if earlier is not None:
            return earlier
        if cache.get(claim_key) is None:
            # The first attempt failed (sold out, say) and gave the key up: this one may try anew.
            raise RequestInProgress("The first request with this Idempotency-Key did not place an order; retry.")
        time.sleep(0.05)
    raise RequestInProgress()


def _release_quietly(order_id: int, *, reason: str) -> None:
    try:
        clients.release_stock(order_id=order_id, reason=reason)
    except ShopError as exc:
        # The reservation carries the order's deadline; inventory ends it then at the latest.
        logger.error("reservation of order %s not released (%s); it ends at its deadline", order_id, exc)


# ---------------------------------------------------------------------------------------
# The state machine
# ---------------------------------------------------------------------------------------


def _transition(
    order: Order,
    to: str,
    *,
    cause: str,
    event_id: uuid.UUID | None = None,
    actor: str = "",
    also_saved: tuple[str, ...] = (),
) -> None:
    """Move a locked order to ``to``, or refuse. Every move is recorded with its cause.

    ``also_saved`` names other fields the caller set for this move, saved in the same update.
    """
    if not order.can_move_to(to):
        raise IllegalTransition(
            f"An order that is {order.status} cannot become {to}.", order_id=order.order_id, status=order.status
        )
    OrderTransition.objects.create(
        order=order, from_status=order.status, to_status=to, cause=cause, event_id=event_id, actor=actor
    )
    order.status = to
    order.save(update_fields=["status", "refund_reason", "updated_at", *also_saved])


def _locked(order_id: int, member_id: int | None = None) -> Order:
    rows = Order.objects.select_for_update().filter(order_id=order_id)
    if member_id is not None:
        rows = rows.filter(member_id=member_id)
    order = rows.first()
    if order is None:
        raise NotFound("No such order.")
    return order


def order_payload(order: Order) -> dict:
    """What every order event carries: enough for inventory to act without calling back."""
    return {
        "order_id": order.order_id,
        "member_id": order.member_id,
        "lines": [
            {
                "variant_id": line.variant_id,
                "cloth_id": line.cloth_id,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
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
        _transition(order, OrderStatus.CANCELLED, cause="cancelled", actor=actor)
        record_event(
            "OrderCancelled",
            aggregate_type="order",
            aggregate_id=order.order_id,
            payload={**order_payload(order), "reason": "cancelled"},
        )
    logger.info("order %s cancelled by %s", order_id, actor)
    try:
        clients.release_stock(order_id=order_id, reason="cancelled")
    except ShopError as exc:
        logger.warning("order %s: stock not released at once (%s); OrderCancelled releases it", order_id, exc)
    return selectors.get_order(order_id=order_id)


def hold_for_payment(*, order_id: int, payment_id: int) -> Order:
    """Hold an order awaiting payment for the payment about to charge it (idempotent per payment).

    Asked by the payment service before it charges, under the order's row lock: a cancel
    that came first makes this 409 (nothing is charged), and one that comes after is 409
    itself while the hold stands (``ORDER_PAYMENT_HOLD_SECONDS``, or until the payment's
    outcome moves the order). So a buyer is never told both "paid" and "cancelled".
    """
    now = timezone.now()
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
        order.payment_hold_until = now + dt.timedelta(seconds=settings.ORDER_PAYMENT_HOLD_SECONDS)
        order.save(update_fields=["payment_hold_id", "payment_hold_until", "updated_at"])
    logger.info("order %s held for payment %s", order_id, payment_id)
    return order


def request_refund(*, order_id: int, member_id: int | None, actor: str, reason: str = "member_request") -> Order:
    """Ask for a paid order's money back; the payment service refunds on ``RefundRequested``."""
    with transaction.atomic():
        order = _locked(order_id, member_id)
        _request_refund_locked(order, reason=reason, actor=actor)
    logger.info("refund of order %s requested by %s (%s)", order_id, actor, reason)
    return selectors.get_order(order_id=order_id)


def _request_refund_locked(
    order: Order, *, reason: str, actor: str, event_id: uuid.UUID | None = None, payment_id: int | None = None
) -> None:
    if order.status != OrderStatus.PAID:
        raise IllegalTransition(
            f"Only a paid order can be refunded; this one is {order.status}.",
            order_id=order.order_id,
            status=order.status,
        )
    order.refund_reason = reason
    _transition(order, OrderStatus.REFUND_REQUESTED, cause=f"refund:{reason}", event_id=event_id, actor=actor)
    _refund_requested(order, payment_id=payment_id, amount=order.total, reason=reason)


# ---------------------------------------------------------------------------------------
# The saga: what payment and inventory events do to an order (called by orders/events.py)
# ---------------------------------------------------------------------------------------


def record_payment_completed(*, order_id: int, payment_id: int, amount: Decimal, event_id: uuid.UUID) -> None:
    """PENDING_PAYMENT -> PAID and ``OrderPaid``; a payment for an ended order is sent back."""
    order = Order.objects.select_for_update().filter(order_id=order_id).first()
    if order is None:
        logger.error("PaymentCompleted %s for unknown order %s; nothing to do", event_id, order_id)
        return
    if order.status == OrderStatus.PENDING_PAYMENT:
        order.paid_by_payment_id = payment_id
        _transition(
            order,
            OrderStatus.PAID,
            cause="payment_completed",
            event_id=event_id,
            actor=f"payment:{payment_id}",
            also_saved=("paid_by_payment_id",),
        )
        record_event(
            "OrderPaid",
            aggregate_type="order",
            aggregate_id=order.order_id,
            payload={**order_payload(order), "payment_id": payment_id, "total": order.total},
        )
        return
    if order.paid_by_payment_id == payment_id:
        logger.info("order %s already paid by payment %s; nothing to do", order_id, payment_id)
        return
    # The money arrived for an order that is over (expired, cancelled, failed) or already
    # paid by another payment: it must go back, and no stock moves.
    reason = "late_payment" if order.status in RELEASED_STATES else "duplicate_payment"
    if PaymentSentBack.objects.filter(payment_id=payment_id).exists():
        logger.info("refund of payment %s for order %s was asked already", payment_id, order_id)
        return
    OrderTransition.objects.create(
        order=order,
        from_status=order.status,
        to_status=order.status,
        cause=f"refund:{reason}",
        event_id=event_id,
        actor=f"payment:{payment_id}",
    )
    PaymentSentBack.objects.create(order=order, payment_id=payment_id, reason=reason, event_id=event_id)
    _refund_requested(order, payment_id=payment_id, amount=amount, reason=reason)
    logger.warning(
        "payment %s arrived for order %s in state %s; refund requested (%s)", payment_id, order_id, order.status, reason
    )


def record_payment_failed(*, order_id: int, payment_id: int, reason: str, event_id: uuid.UUID) -> None:
    """PENDING_PAYMENT -> PAYMENT_FAILED and ``OrderPaymentFailed`` (inventory releases)."""
    order = Order.objects.select_for_update().filter(order_id=order_id).first()
    if order is None or order.status != OrderStatus.PENDING_PAYMENT:
        logger.info(
            "PaymentFailed %s for order %s in state %s; nothing to do",
            event_id,
            order_id,
            order.status if order else "unknown",
        )
        return
    _transition(
        order,
        OrderStatus.PAYMENT_FAILED,
        cause=f"payment_failed:{reason}"[:64],
        event_id=event_id,
        actor=f"payment:{payment_id}",
    )
    record_event(
        "OrderPaymentFailed",
        aggregate_type="order",
        aggregate_id=order.order_id,
        payload={**order_payload(order), "payment_id": payment_id, "reason": reason},
    )


def record_payment_refunded(*, order_id: int, payment_id: int, event_id: uuid.UUID) -> None:
    """REFUND_REQUESTED -> REFUNDED and ``OrderRefunded`` (inventory returns sold stock)."""
    order = Order.objects.select_for_update().filter(order_id=order_id).first()
    if order is None:
        logger.error("PaymentRefunded %s for unknown order %s; nothing to do", event_id, order_id)
        return
    if order.status != OrderStatus.REFUND_REQUESTED:
        # A late or duplicate payment went back: the order's own state does not change.
        OrderTransition.objects.create(
            order=order,
            from_status=order.status,
            to_status=order.status,
            cause="payment_refunded",
            event_id=event_id,
            actor=f"payment:{payment_id}",
        )
        return
    _transition(order, OrderStatus.REFUNDED, cause="payment_refunded", event_id=event_id, actor=f"payment:{payment_id}")
    record_event(
        "OrderRefunded",
        aggregate_type="order",
        aggregate_id=order.order_id,
        payload={
            **order_payload(order),
            "payment_id": payment_id,
            "reason": order.refund_reason,
            # Units that were never sold (StockSellFailed) must not be returned.
            "restock": order.refund_reason != "stock_unavailable",
        },
    )


def record_stock_sell_failed(*, order_id: int, event_id: uuid.UUID) -> None:
    """Inventory could not sell a paid order's units (released meanwhile): refund the money."""
    order = Order.objects.select_for_update().filter(order_id=order_id).first()
    if order is None or order.status != OrderStatus.PAID:
        logger.info(
            "StockSellFailed %s for order %s in state %s; nothing to do",
            event_id,
            order_id,
            order.status if order else "unknown",
        )
        return
    _request_refund_locked(order, reason="stock_unavailable", actor="inventory", event_id=event_id)


# ---------------------------------------------------------------------------------------
# Expiry (Celery beat)
# ---------------------------------------------------------------------------------------


def expire_overdue_orders(*, now: dt.datetime | None = None, batch_size: int | None = None) -> int:
    """End unpaid orders past their deadline, one batch per transaction. Returns how many.

    ``SKIP LOCKED``: two sweeps (or a sweep and a payment) never wait on each other.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.ORDER_EXPIRY_BATCH_SIZE
    expired = 0
    while True:
        with transaction.atomic():
            batch = list(
                Order.objects.select_for_update(skip_locked=True)
                .filter(status=OrderStatus.PENDING_PAYMENT, payment_deadline__lt=now)
                .exclude(payment_hold_until__gt=now)  # a payment is charging it: its outcome decides
                .order_by("payment_deadline")[:batch_size]
            )
            if not batch:
                break
            lines_by_order: dict[int, list[OrderLine]] = {}
            for line in OrderLine.objects.filter(order_id__in=[o.order_id for o in batch]):
                lines_by_order.setdefault(line.order_id, []).append(line)
            for order in batch:
                order.known_lines = lines_by_order.get(order.order_id, [])
                _transition(order, OrderStatus.EXPIRED, cause="payment_deadline_passed", actor="expiry")
                record_event(
                    "OrderExpired",
                    aggregate_type="order",
                    aggregate_id=order.order_id,
                    payload={**order_payload(order), "reason": "payment_deadline_passed"},
                )
            expired += len(batch)
        if len(batch) < batch_size:
            break
    if expired:
        logger.info("expired %d unpaid orders", expired)
    return expired


def _refund_requested(order: Order, *, payment_id, amount, reason: str) -> None:
    """Announce that the order's money must go back (the payment service refunds once)."""
    record_event(
        "RefundRequested",
        aggregate_type="order",
        aggregate_id=order.order_id,
        payload={
            "order_id": order.order_id,
            "member_id": order.member_id,
            "payment_id": payment_id,
            "amount": amount,
            "reason": reason,
        },
    )

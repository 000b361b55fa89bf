"""Placing an order: the hot path of a drop. One upstream call (reserve), one transaction.

Before it: the early sold-out answer (``refuse_if_known_sold_out``) and the claim of the
request's Idempotency-Key, so that two requests with one key never reserve twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from orders import clients, selectors
from orders.models import Order, OrderLine, OrderStatus, OrderTransition
from orders.services.lifecycle import order_facts
from shared.contracts.order import OrderPlaced
from shared.errors import (
    SAME_ANSWER_HEADER,
    IdempotencyKeyReused,
    RequestInProgress,
    ShopError,
    SoldOut,
    UpstreamUnavailable,
    ValidationFailed,
)
from shared.messaging.events import insert_announced

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineRequest:
    variant_id: int
    quantity: int


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
        if on_placed is None:  # one statement, which commits on its own: no BEGIN and COMMIT round trips
            order = _write_order(attempt, lines, details, deadline=deadline, fingerprint=fingerprint)
        else:
            with transaction.atomic():
                order = _write_order(attempt, lines, details, deadline=deadline, fingerprint=fingerprint)
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
    mark = clients.known_sold_out([line.variant_id for line in lines])
    if mark is not None:
        raise SoldOut(**mark.answer)


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
    """The order, its lines, its first transition and ``OrderPlaced`` in one statement, which
    commits them together on its own or inside the caller's transaction: the order's key is
    drawn already, so nothing waits for another row's."""
    order = Order(
        order_id=attempt.order_id,
        member_id=attempt.member_id,
        status=OrderStatus.PENDING_PAYMENT,
        total=sum((details[line.variant_id].price * line.quantity for line in lines), Decimal("0")),
        payment_deadline=deadline,
        idempotency_key=attempt.idempotency_key or "",
        request_fingerprint=fingerprint if attempt.idempotency_key else "",
    )
    order.known_lines = [
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
    placed = OrderTransition(
        order=order, from_status="", to_status=order.status, cause="placed", actor=f"member:{attempt.member_id}"
    )
    insert_announced(
        [order],
        order.known_lines,
        [placed],
        events=[OrderPlaced(**order_facts(order), total=order.total, payment_deadline=deadline)],
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
    mark = clients.known_sold_out(variant_ids)
    if mark is not None:
        refusal = SoldOut(**mark.answer)
        # Until the mark fades, this body gets this answer whoever sends it (no key, plain
        # lines, nothing read but the mark): the gateway may repeat it without asking again.
        refusal.headers = {SAME_ANSWER_HEADER: f"{max(0.0, mark.until - time.monotonic()):.3f}"}
        raise refusal


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

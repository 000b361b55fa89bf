"""Reserving an order's units: the gate decides, PostgreSQL makes it durable, and each way
this can fail half-way gives back exactly what this call took."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from inventory import gate, selectors
from inventory.gate import GateAnswer, RecordState
from inventory.models import MovementKind, Reservation, ReservationLine, ReservationState
from inventory.services.counters import (
    Line,
    Short,
    by_cloth,
    lines_payload,
    move,
    move_statement,
    pairs,
    reserved_lines,
    stock_changed_events,
)
from inventory.services.gate_steps import call_gate, undo_in_gate
from inventory.services.ledger import ledger_rows
from shared.contracts.inventory import StockChanged, StockLevel, StockReserved
from shared.errors import (
    IllegalTransition,
    LimitExceeded,
    NotOnSale,
    SoldOut,
    UpstreamUnavailable,
    ValidationFailed,
)
from shared.inserts import insert_select, insert_together, mark_saved
from shared.messaging.events import event_rows, outbox_rows
from shared.messaging.models import OutboxEvent
from shared.messaging.publisher import wake_relay

logger = logging.getLogger(__name__)


def _normalize_lines(lines: list[dict]) -> list[Line]:
    quantities: dict[int, int] = defaultdict(int)
    for line in lines:
        quantities[int(line["variant_id"])] += int(line["quantity"])
    cloth_of = selectors.cloth_of_variants(list(quantities))
    unknown = [i for i, line in enumerate(lines) if int(line["variant_id"]) not in cloth_of]
    if unknown:
        raise ValidationFailed(
            "Unknown variant.", fields={f"lines.{i}.variant_id": ["unknown variant"] for i in unknown}
        )
    return [Line(v, cloth_of[v], q) for v, q in quantities.items()]


def _refusal(answer: list[str], cloth_id: int, lines: list[Line]) -> Exception:
    kind = answer[0]
    if kind == GateAnswer.SOLD_OUT:
        return SoldOut(variant_id=int(answer[1]), cloth_id=cloth_id)
    if kind == GateAnswer.NOT_ON_SALE:
        return NotOnSale(cloth_id=cloth_id, variant_id=lines[0].variant_id)
    if kind == GateAnswer.LIMIT_EXCEEDED:
        return LimitExceeded(cloth_id=cloth_id, variant_id=lines[0].variant_id)
    return UpstreamUnavailable(f"The stock gate of cloth {cloth_id} is not available.")


def reserve_stock(*, order_id: int, member_id: int, lines: list[dict], deadline: dt.datetime | None = None) -> dict:
    """Reserve every line for ``order_id`` or none: the drop's hot path.

    One gate script per cloth decides (no lock held); the winners are made durable in one
    statement (one line) or one short transaction (several), whose guarded updates refuse
    any unit Redis wrongly let through. Idempotent per order id: a retry answers what the
    first call answered.
    """
    wanted = _normalize_lines(lines)
    deadline = deadline or timezone.now() + dt.timedelta(seconds=settings.INVENTORY_DEFAULT_RESERVATION_SECONDS)
    groups = by_cloth(wanted)
    held: dict[int, list[Line]] = {}
    retried: dict[int, str] = {}
    try:
        for cloth_id, cloth_lines in groups.items():
            answer = call_gate(
                cloth_id,
                lambda c=cloth_id, ls=cloth_lines: gate.reserve(
                    cloth_id=c, order_id=order_id, member_id=member_id, lines=pairs(ls)
                ),
            )
            if answer[0] == GateAnswer.OK:
                held[cloth_id] = cloth_lines
            elif answer[0] == GateAnswer.AGAIN:
                retried[cloth_id] = answer[1]
                held[cloth_id] = cloth_lines
            else:
                undo_in_gate(order_id, {c: ls for c, ls in held.items() if c not in retried})
                raise _refusal(answer, cloth_id, cloth_lines)
    except redis.RedisError as exc:
        undo_in_gate(order_id, {c: ls for c, ls in held.items() if c not in retried})
        logger.error("order %s: stock gate unavailable (%s)", order_id, exc)
        raise UpstreamUnavailable("The stock gate is unavailable; try again.") from exc

    if retried:
        existing = Reservation.objects.filter(order_id=order_id).first()
        if existing is not None:
            return _answer_existing(existing, order_id, {c: ls for c, ls in held.items() if c not in retried})
        if any(state != RecordState.RESERVED for state in retried.values()):
            undo_in_gate(order_id, {c: ls for c, ls in held.items() if c not in retried})
            raise IllegalTransition("This order's reservation has ended.")
        # Records held for an order PostgreSQL never heard of: a first attempt died between
        # the gate and the database. This call finishes it.

    try:
        if len(wanted) == 1 and not connection.in_atomic_block:  # a drop's order: one statement, no transaction
            reservation = _write_one_line(order_id=order_id, member_id=member_id, line=wanted[0], deadline=deadline)
        else:
            with transaction.atomic():
                reservation = _write_reservation(
                    order_id=order_id, member_id=member_id, lines=wanted, deadline=deadline, groups=groups
                )
    except Short as exc:
        undo_in_gate(order_id, held, short=set(exc.variants))
        logger.warning("order %s: gate was ahead of PostgreSQL on variants %s; sold out", order_id, exc.variants)
        raise SoldOut(variant_id=exc.variants[0]) from None
    except IntegrityError as exc:
        existing = Reservation.objects.filter(order_id=order_id).first()
        if existing is None:
            undo_in_gate(order_id, held)
            logger.error("order %s: reservation not written (%s); units given back", order_id, exc)
            raise UpstreamUnavailable("Stock could not be reserved; try again.") from exc
        fresh = {c: ls for c, ls in held.items() if c not in retried}
        if existing.state == ReservationState.ACTIVE:
            # Another call for the same order won the insert: the records of its clothes are its
            # own; a record this call made for a cloth outside that reservation is not.
            undo_in_gate(order_id, {c: ls for c, ls in fresh.items() if c not in existing.cloth_ids})
            return selectors.reservation_answer(existing)
        return _answer_existing(existing, order_id, fresh)
    except DatabaseError as exc:
        undo_in_gate(order_id, held)
        logger.error("order %s: reservation not written (%s); units given back", order_id, exc)
        raise UpstreamUnavailable("Stock could not be reserved; try again.") from exc
    logger.info("order %s: reserved %s for member %s", order_id, pairs(wanted), member_id)
    return {
        "order_id": reservation.order_id,
        "member_id": member_id,
        "status": "RESERVED",
        "lines": lines_payload(wanted),
        "deadline": deadline,
    }


def _answer_existing(existing: Reservation, order_id: int, fresh: dict[int, list[Line]]) -> dict:
    """A retry: answer as the first call did. Units this call took afresh are not the order's."""
    if fresh:
        undo_in_gate(order_id, fresh)
    if existing.state == ReservationState.ACTIVE:
        return selectors.reservation_answer(existing)
    raise IllegalTransition(f"This order's reservation is {existing.state.lower()}.", order_id=order_id)


def _write_reservation(
    *, order_id: int, member_id: int, lines: list[Line], deadline: dt.datetime, groups: dict[int, list[Line]]
) -> Reservation:
    """Two statements around the counters: the reservation with its ledger rows, then, once
    the counters moved, its lines (which need the reservation's key) with its events."""
    reservation = Reservation(order_id=order_id, member_id=member_id, cloth_ids=sorted(groups), deadline=deadline)
    insert_together(
        [reservation],
        ledger_rows(lines, MovementKind.RESERVE, order_id=order_id, cause="order", actor=f"member:{member_id}"),
    )
    # The counters last: in a drop every winner updates the same few rows, and a row stays
    # locked from its update to the commit. Updated in variant order, so two orders that
    # share variants never wait on each other crosswise. Then the lines and both events
    # (StockReserved first) in one statement: one statement while the rows are locked, as
    # with one event.
    rows, short = [], []
    for line in sorted(lines, key=lambda ln: ln.variant_id):
        row = move(line.variant_id, line.quantity, "reserve")
        if row is None:
            short.append(line.variant_id)
        else:
            rows.append(row)
    if short:
        raise Short(short)
    insert_together(
        [
            ReservationLine(
                reservation=reservation, variant_id=ln.variant_id, cloth_id=ln.cloth_id, quantity=ln.quantity
            )
            for ln in lines
        ],
        outbox_rows(
            StockReserved(order_id=order_id, member_id=member_id, lines=reserved_lines(lines), deadline=deadline),
            *stock_changed_events(rows),
        ),
    )
    return reservation


#: StockChanged's ``variants`` from the counters the statement's ``moved`` clause returns.
_MOVED_LEVELS = (
    "jsonb_set(%s, '{variants}', jsonb_build_array(jsonb_build_object("
    "'variant_id', moved.variant_id, 'available', moved.total - moved.reserved - moved.sold, "
    "'total', moved.total, 'version', moved.version)))"
)


def _write_one_line(*, order_id: int, member_id: int, line: Line, deadline: dt.datetime) -> Reservation:
    """A one-line reservation in one statement, which commits on its own: the guarded update
    of the variant's counters, then, only if it changed the row, the reservation, its line,
    its ledger row, ``StockReserved`` and ``StockChanged`` (whose counts are the update's).

    Against the transaction of :func:`_write_reservation` this saves four round trips, and
    the counters' row, which every winner of a drop updates, is locked only while the
    statement runs and commits. ``Short`` when the guard refused; an ``IntegrityError``
    (another call for the order wrote its reservation first) leaves nothing written.
    """
    reservation = Reservation(order_id=order_id, member_id=member_id, cloth_ids=[line.cloth_id], deadline=deadline)
    reserved_line = ReservationLine(variant_id=line.variant_id, cloth_id=line.cloth_id, quantity=line.quantity)
    ledger = ledger_rows([line], MovementKind.RESERVE, order_id=order_id, cause="order", actor=f"member:{member_id}")
    # StockChanged is written with its counts as the update leaves them: a template here.
    template = StockLevel(variant_id=line.variant_id, available=0, total=0, version=0)
    announced, changed = event_rows(
        StockReserved(order_id=order_id, member_id=member_id, lines=reserved_lines([line]), deadline=deadline),
        StockChanged(cloth_id=line.cloth_id, variants=[template]),
    )
    move_sql, params = move_statement(line.variant_id, line.quantity, "reserve")
    clauses = [f"moved AS ({move_sql})"]
    for name, (sql, values) in (
        ("r", insert_select([(reservation, {})], "moved", returning=True)),
        ("l", insert_select([(reserved_line, {"reservation_id": ("r.id", [])})], "r")),
        ("m", insert_select([(row, {}) for row in ledger], "moved")),
        (
            "e",
            insert_select(
                [(announced, {}), (changed, {"payload": (_MOVED_LEVELS, [_json(changed.payload)])})], "moved"
            ),
        ),
    ):
        clauses.append(f"{name} AS ({sql})")
        params += values
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(clauses)} SELECT r.id FROM r", params)
        row = cursor.fetchone()
    if row is None:
        raise Short([line.variant_id])
    mark_saved([reservation], [row[0]])
    wake_relay()  # the statement has committed
    return reservation


def _json(value: dict) -> object:
    """``value`` as the outbox's payload column takes it."""
    return OutboxEvent._meta.get_field("payload").get_db_prep_save(value, connection=connection)

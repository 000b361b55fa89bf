"""Every change of stock: register, restock, correct, reserve, release, sell, return.

Each function is the one path for its use case (views, consumers, commands and the admin
call it). The order of Redis and PostgreSQL is chosen so a crash between them can only
leave Redis *under*-counting (a unit briefly unsellable, until ``repair_gate`` runs), and
PostgreSQL's guarded updates refuse any unit that is not there: no oversell, ever.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from inventory import gate, selectors
from inventory.models import (
    ClothRule,
    MovementKind,
    Reservation,
    ReservationLine,
    ReservationState,
    StockItem,
    StockMovement,
)
from shared.errors import (
    IllegalTransition,
    LimitExceeded,
    NotFound,
    NotOnSale,
    SoldOut,
    UpstreamUnavailable,
    ValidationFailed,
)
from shared.messaging.events import record_event

logger = logging.getLogger(__name__)

_TABLE = StockItem._meta.db_table


@dataclass(frozen=True)
class Line:
    variant_id: int
    cloth_id: int
    quantity: int


# --- PostgreSQL counters: guarded updates ---------------------------------------------------

_UPDATES = {
    # kind: (SET clause, guard)
    "reserve": ("reserved = reserved + %(q)s", "total - reserved - sold >= %(q)s"),
    "release": ("reserved = reserved - %(q)s", "reserved >= %(q)s"),
    "sell": ("reserved = reserved - %(q)s, sold = sold + %(q)s", "reserved >= %(q)s"),
    "reacquire": ("sold = sold + %(q)s", "total - reserved - sold >= %(q)s"),
    "return": ("sold = sold - %(q)s", "sold >= %(q)s"),
    "total": ("total = total + %(q)s", "total + %(q)s >= reserved + sold"),
}


def _move(variant_id: int, quantity: int, how: str) -> dict | None:
    """One guarded counter update; the row's new counts, or None when the guard refused."""
    set_clause, guard = _UPDATES[how]
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {_TABLE} SET {set_clause}, version = version + 1, updated_at = now() "  # noqa: S608 - fixed SQL
            f"WHERE variant_id = %(v)s AND {guard} "
            "RETURNING variant_id, cloth_id, total, reserved, sold, version",
            {"v": variant_id, "q": quantity},
        )
        row = cur.fetchone()
    if row is None:
        return None
    v, c, total, reserved, sold, version = row
    return {
        "variant_id": v,
        "cloth_id": c,
        "total": total,
        "available": total - reserved - sold,
        "reserved": reserved,
        "sold": sold,
        "version": version,
    }


def _ledger(lines: list[Line], kind: str, *, order_id: int | None, cause: str, actor: str, sign: int = 1) -> None:
    StockMovement.objects.bulk_create(
        [
            StockMovement(
                variant_id=line.variant_id,
                cloth_id=line.cloth_id,
                kind=kind,
                quantity=sign * line.quantity,
                order_id=order_id,
                cause=cause[:64],
                actor=actor[:128],
            )
            for line in lines
        ]
    )


def _stock_changed(rows: list[dict]) -> None:
    """StockChanged per cloth, with the new counts of the variants that changed."""
    by_cloth: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_cloth[row["cloth_id"]].append(row)
    for cloth_id, items in by_cloth.items():
        record_event(
            "StockChanged",
            aggregate_type="stock",
            aggregate_id=cloth_id,
            payload={
                "cloth_id": cloth_id,
                "variants": [
                    {
                        "variant_id": r["variant_id"],
                        "available": r["available"],
                        "total": r["total"],
                        "version": r["version"],
                    }
                    for r in items
                ],
            },
        )


def _lines_payload(lines: list[Line]) -> list[dict]:
    return [{"variant_id": ln.variant_id, "cloth_id": ln.cloth_id, "quantity": ln.quantity} for ln in lines]


def _by_cloth(lines: list[Line]) -> dict[int, list[Line]]:
    grouped: dict[int, list[Line]] = defaultdict(list)
    for line in sorted(lines, key=lambda ln: (ln.cloth_id, ln.variant_id)):
        grouped[line.cloth_id].append(line)
    return dict(grouped)


def _pairs(lines: list[Line]) -> list[tuple[int, int]]:
    return [(ln.variant_id, ln.quantity) for ln in lines]


def _after_commit(func, *args, **kwargs) -> None:
    """Run a Redis follow-up once the PostgreSQL change is committed; a failure there is logged."""

    def run() -> None:
        try:
            func(*args, **kwargs)
        except redis.RedisError as exc:
            # Safe: the gate then holds fewer units than PostgreSQL; repair_gate finishes it.
            logger.warning("stock gate not updated after commit (%s); the gate repair job finishes it", exc)

    transaction.on_commit(run)


# --- register, restock, correct -------------------------------------------------------------


def register_stock(
    *,
    cloth_id: int,
    sale_starts_at: dt.datetime | None,
    purchase_limit: int | None,
    variants: list[dict],
    name: str = "",
    actor: str = "catalog",
) -> dict:
    """Make the cloth's variants known with their first stock, and its rule; load its gate.

    Idempotent: a known variant keeps its counts (restocks go through :func:`restock`), so
    the catalog's synchronous call and its ``ClothCreated`` event may both arrive.
    """
    with transaction.atomic():
        rule, _ = ClothRule.objects.select_for_update().get_or_create(cloth_id=cloth_id)
        rule.sale_starts_at = sale_starts_at
        rule.purchase_limit = purchase_limit or 0
        rule.save()
        wanted = {int(v["variant_id"]): int(v["stock"]) for v in variants}
        known = dict(StockItem.objects.filter(variant_id__in=wanted).values_list("variant_id", "cloth_id"))
        elsewhere = sorted(v for v, c in known.items() if c != cloth_id)
        if elsewhere:
            raise ValidationFailed(
                f"Variant {elsewhere[0]} belongs to another cloth.",
                fields={"variants": [f"variant {elsewhere[0]} belongs to another cloth"]},
            )
        sizes = {int(v["variant_id"]): v.get("size") or "" for v in variants}
        new = [
            StockItem(variant_id=v, cloth_id=cloth_id, total=stock, cloth_name=name, size=sizes[v])
            for v, stock in wanted.items()
            if v not in known
        ]
        StockItem.objects.bulk_create(new)
        _rename_known(cloth_id, name, {v: sizes[v] for v in known})
        new_lines = [Line(i.variant_id, cloth_id, i.total) for i in new if i.total]
        _ledger(new_lines, MovementKind.RESTOCK, order_id=None, cause="registered", actor=actor)
        if new:
            _stock_changed(
                [
                    {
                        "variant_id": i.variant_id,
                        "cloth_id": cloth_id,
                        "total": i.total,
                        "available": i.total,
                        "version": 0,
                    }
                    for i in new
                ]
            )
        start_ms, limit = gate._rule_ms(rule)
        _after_commit(_load_registered, cloth_id, start_ms, limit, [(i.variant_id, i.total) for i in new])
    items = selectors.stock_of_variants(list(wanted), from_cache=False)
    return {"cloth_id": cloth_id, "created": [i.variant_id for i in new], "variants": items}


def _rename_known(cloth_id: int, name: str, sizes: dict[int, str]) -> None:
    """Keep the names people read in the admin as the catalog last said them (never the counts)."""
    if name:
        StockItem.objects.filter(cloth_id=cloth_id).exclude(cloth_name=name).update(cloth_name=name)
    for variant_id, size in sizes.items():
        if size:
            StockItem.objects.filter(variant_id=variant_id).exclude(size=size).update(size=size)


def _load_registered(cloth_id: int, start_ms: int, limit: int, new: list[tuple[int, int]]) -> None:
    if gate.is_loaded(cloth_id):
        gate.set_rule(cloth_id=cloth_id, start_ms=start_ms, limit=limit)
        for variant_id, stock in new:
            # Set, never add: a load from PostgreSQL that ran since our commit already counted
            # these units (the catalog's call and its ClothCreated event arrive together).
            gate.add_variant(cloth_id=cloth_id, variant_id=variant_id, available=stock)
    else:
        gate.ensure_loaded(cloth_id)


def restock(*, variant_id: int, quantity: int, reason: str = "", actor: str = "") -> dict:
    """Add ``quantity`` units to a variant (ledger: restock)."""
    if quantity <= 0:
        raise ValidationFailed("A restock adds at least one unit.", fields={"quantity": ["must be at least 1"]})
    return _change_total(variant_id=variant_id, delta=quantity, kind=MovementKind.RESTOCK, reason=reason, actor=actor)


def correct_stock(*, variant_id: int, delta: int, reason: str, actor: str = "") -> dict:
    """Correct a variant's total by ``delta`` (a count found wrong); never below reserved + sold."""
    if delta == 0:
        raise ValidationFailed("A correction changes the total.", fields={"delta": ["must not be 0"]})
    if not reason:
        raise ValidationFailed("Say why the count is corrected.", fields={"reason": ["required for a correction"]})
    return _change_total(variant_id=variant_id, delta=delta, kind=MovementKind.CORRECT, reason=reason, actor=actor)


def _change_total(*, variant_id: int, delta: int, kind: str, reason: str, actor: str) -> dict:
    with transaction.atomic():
        row = _move(variant_id, delta, "total")
        if row is None:
            if not StockItem.objects.filter(variant_id=variant_id).exists():
                raise NotFound(f"No stock for variant {variant_id}.")
            raise ValidationFailed(
                "The total cannot go below the units reserved and sold.",
                fields={"quantity": ["would leave fewer units than reserved + sold"]},
            )
        _ledger([Line(variant_id, row["cloth_id"], delta)], kind, order_id=None, cause=reason or kind, actor=actor)
        _stock_changed([row])
        _after_commit(gate.adjust, cloth_id=row["cloth_id"], variant_id=variant_id, delta=delta)
        transaction.on_commit(lambda: selectors.invalidate_stock_cache([variant_id]))
    logger.info("%s of variant %s by %+d (%s, %s)", kind, variant_id, delta, reason, actor)
    return row


# --- reserve ---------------------------------------------------------------------------------


class _Short(Exception):
    def __init__(self, variants: list[int]):
        self.variants = variants


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
    if kind == "SOLD_OUT":
        return SoldOut(variant_id=int(answer[1]), cloth_id=cloth_id)
    if kind == "NOT_ON_SALE":
        return NotOnSale(cloth_id=cloth_id, variant_id=lines[0].variant_id)
    if kind == "LIMIT_EXCEEDED":
        return LimitExceeded(cloth_id=cloth_id, variant_id=lines[0].variant_id)
    return UpstreamUnavailable(f"The stock gate of cloth {cloth_id} is not available.")


def _gate_call(cloth_id: int, call):
    """Run a gate script; load the cloth from PostgreSQL first if its keys are missing."""
    answer = call()
    for _ in range(2):
        if answer[0] == "NOT_LOADED":
            gate.ensure_loaded(cloth_id)
        elif answer[0] == "UNKNOWN_VARIANT":
            # A variant PostgreSQL knows but the gate does not: the gate is stale, load it again.
            gate.load(cloth_id)
        else:
            break
        answer = call()
    return answer


def _undo(order_id: int, held: dict[int, list[Line]], *, short: set[int] = frozenset(), state: str = "R") -> None:
    """Drop the order's gate records this call left in ``state`` (R after a reserve, S after a
    sell); units go back unless PostgreSQL said they were not there."""
    for cloth_id, lines in held.items():
        try:
            gate.forget(
                cloth_id=cloth_id,
                order_id=order_id,
                give_back=[ln.variant_id for ln in lines if ln.variant_id not in short],
                state=state,
            )
        except redis.RedisError as exc:
            logger.warning(
                "order %s: gate record of cloth %s not dropped (%s); the gate repair job finishes it",
                order_id,
                cloth_id,
                exc,
            )


def reserve_stock(*, order_id: int, member_id: int, lines: list[dict], deadline: dt.datetime | None = None) -> dict:
    """Reserve every line for ``order_id`` or none: the drop's hot path.

    One gate script per cloth decides (no lock held); the winners are made durable in one
    short PostgreSQL transaction whose guarded updates refuse any unit Redis wrongly let
    through. Idempotent per order id: a retry answers what the first call answered.
    """
    wanted = _normalize_lines(lines)
    deadline = deadline or timezone.now() + dt.timedelta(seconds=settings.INVENTORY_DEFAULT_RESERVATION_SECONDS)
    groups = _by_cloth(wanted)
    held: dict[int, list[Line]] = {}
    retried: dict[int, str] = {}
    try:
        for cloth_id, cloth_lines in groups.items():
            answer = _gate_call(
                cloth_id,
                lambda c=cloth_id, ls=cloth_lines: gate.reserve(
                    cloth_id=c, order_id=order_id, member_id=member_id, lines=_pairs(ls)
                ),
            )
            if answer[0] == "OK":
                held[cloth_id] = cloth_lines
            elif answer[0] == "AGAIN":
                retried[cloth_id] = answer[1]
                held[cloth_id] = cloth_lines
            else:
                _undo(order_id, {c: ls for c, ls in held.items() if c not in retried})
                raise _refusal(answer, cloth_id, cloth_lines)
    except redis.RedisError as exc:
        _undo(order_id, {c: ls for c, ls in held.items() if c not in retried})
        logger.error("order %s: stock gate unavailable (%s)", order_id, exc)
        raise UpstreamUnavailable("The stock gate is unavailable; try again.") from exc

    if retried:
        existing = Reservation.objects.filter(order_id=order_id).first()
        if existing is not None:
            return _answer_existing(existing, order_id, {c: ls for c, ls in held.items() if c not in retried})
        if any(state != "R" for state in retried.values()):
            _undo(order_id, {c: ls for c, ls in held.items() if c not in retried})
            raise IllegalTransition("This order's reservation has ended.")
        # Records held for an order PostgreSQL never heard of: a first attempt died between
        # the gate and the database. This call finishes it.

    try:
        with transaction.atomic():
            reservation = _write_reservation(
                order_id=order_id, member_id=member_id, lines=wanted, deadline=deadline, groups=groups
            )
    except _Short as exc:
        _undo(order_id, held, short=set(exc.variants))
        logger.warning("order %s: gate was ahead of PostgreSQL on variants %s; sold out", order_id, exc.variants)
        raise SoldOut(variant_id=exc.variants[0]) from None
    except IntegrityError as exc:
        existing = Reservation.objects.filter(order_id=order_id).first()
        if existing is None:
            _undo(order_id, held)
            logger.error("order %s: reservation not written (%s); units given back", order_id, exc)
            raise UpstreamUnavailable("Stock could not be reserved; try again.") from exc
        fresh = {c: ls for c, ls in held.items() if c not in retried}
        if existing.state == ReservationState.ACTIVE:
            # Another call for the same order won the insert: the records of its clothes are its
            # own; a record this call made for a cloth outside that reservation is not.
            _undo(order_id, {c: ls for c, ls in fresh.items() if c not in existing.cloth_ids})
            return selectors.reservation_answer(existing)
        return _answer_existing(existing, order_id, fresh)
    except DatabaseError as exc:
        _undo(order_id, held)
        logger.error("order %s: reservation not written (%s); units given back", order_id, exc)
        raise UpstreamUnavailable("Stock could not be reserved; try again.") from exc
    logger.info("order %s: reserved %s for member %s", order_id, _pairs(wanted), member_id)
    return {
        "order_id": reservation.order_id,
        "member_id": member_id,
        "status": "RESERVED",
        "lines": _lines_payload(wanted),
        "deadline": deadline,
    }


def _answer_existing(existing: Reservation, order_id: int, fresh: dict[int, list[Line]]) -> dict:
    """A retry: answer as the first call did. Units this call took afresh are not the order's."""
    if fresh:
        _undo(order_id, fresh)
    if existing.state == ReservationState.ACTIVE:
        return selectors.reservation_answer(existing)
    raise IllegalTransition(f"This order's reservation is {existing.state.lower()}.", order_id=order_id)


def _write_reservation(
    *, order_id: int, member_id: int, lines: list[Line], deadline: dt.datetime, groups: dict[int, list[Line]]
) -> Reservation:
    reservation = Reservation.objects.create(
        order_id=order_id, member_id=member_id, cloth_ids=sorted(groups), deadline=deadline
    )
    ReservationLine.objects.bulk_create(
        [
            ReservationLine(
                reservation=reservation, variant_id=ln.variant_id, cloth_id=ln.cloth_id, quantity=ln.quantity
            )
            for ln in lines
        ]
    )
    _ledger(lines, MovementKind.RESERVE, order_id=order_id, cause="order", actor=f"member:{member_id}")
    record_event(
        "StockReserved",
        aggregate_type="reservation",
        aggregate_id=order_id,
        payload={
            "order_id": order_id,
            "member_id": member_id,
            "lines": _lines_payload(lines),
            "deadline": deadline.isoformat(),
        },
    )
    # The counters last: in a drop every winner updates the same few rows, and a row stays
    # locked from its update to the commit. Updated in variant order, so two orders that
    # share variants never wait on each other crosswise.
    rows, short = [], []
    for line in sorted(lines, key=lambda ln: ln.variant_id):
        row = _move(line.variant_id, line.quantity, "reserve")
        if row is None:
            short.append(line.variant_id)
        else:
            rows.append(row)
    if short:
        raise _Short(short)
    _stock_changed(rows)
    return reservation


# --- release, sell, return -------------------------------------------------------------------


def _locked(order_id: int) -> Reservation | None:
    return Reservation.objects.select_for_update().filter(order_id=order_id).first()


def _lines_of(reservation: Reservation) -> list[Line]:
    return [Line(ln.variant_id, ln.cloth_id, ln.quantity) for ln in reservation.lines.all()]


def _move_all(lines: list[Line], how: str) -> list[dict]:
    rows = []
    for line in lines:
        row = _move(line.variant_id, line.quantity, how)
        if row is None:
            # PostgreSQL's counts disagree with its own reservation rows: stop, change nothing.
            raise IllegalTransition(f"Stock of variant {line.variant_id} does not allow {how} of {line.quantity}.")
        rows.append(row)
    return rows


def release_reservation(*, order_id: int, reason: str = "", actor: str = "") -> dict:
    """Give an order's reserved units back (cancel, expiry, failed payment). Idempotent.

    PostgreSQL first, then the gate: a crash in between leaves the gate holding units it
    need not (never the reverse). Releasing an order never reserved leaves a RELEASED mark,
    so a reserve call arriving late for it cannot take units any more.
    """
    with transaction.atomic():
        reservation = _locked(order_id)
        if reservation is None:
            try:
                with transaction.atomic():
                    Reservation.objects.create(
                        order_id=order_id,
                        member_id=0,
                        state=ReservationState.RELEASED,
                        deadline=timezone.now(),
                        release_reason=(reason or "released")[:64],
                    )
            except IntegrityError:
                return release_reservation(order_id=order_id, reason=reason, actor=actor)
            logger.info("order %s: release before any reservation; marked released", order_id)
            return {"order_id": order_id, "status": ReservationState.RELEASED.value, "lines": []}
        lines = _lines_of(reservation)
        if reservation.state == ReservationState.ACTIVE:
            rows = _move_all(lines, "release")
            _ledger(lines, MovementKind.RELEASE, order_id=order_id, cause=reason or "released", actor=actor)
            reservation.state = ReservationState.RELEASED
            reservation.release_reason = (reason or "released")[:64]
            reservation.save(update_fields=["state", "release_reason", "updated_at"])
            record_event(
                "StockReleased",
                aggregate_type="reservation",
                aggregate_id=order_id,
                payload={
                    "order_id": order_id,
                    "member_id": reservation.member_id,
                    "reason": reservation.release_reason,
                    "lines": _lines_payload(lines),
                },
            )
            _stock_changed(rows)
            logger.info("order %s: released (%s)", order_id, reason)
        elif reservation.state != ReservationState.RELEASED:
            raise IllegalTransition(
                f"This order's stock is {reservation.state.lower()}, not reserved.", order_id=order_id
            )
        # Also on a repeated release: finishes a gate update a crash may have skipped.
        for cloth_id in reservation.cloth_ids:
            _after_commit(gate.release, cloth_id=cloth_id, order_id=order_id)
    return {"order_id": order_id, "status": ReservationState.RELEASED.value, "lines": _lines_payload(lines)}


def sell_reservation(*, order_id: int, actor: str = "") -> dict:
    """Commit a paid order's units as sold. Idempotent.

    A payment may arrive after its reservation was released (expired): then the units are
    taken again only if they are still free, atomically in the gate and guarded in
    PostgreSQL; if not, nothing is sold and ``StockSellFailed`` tells the order side to refund.
    Answers ``{order_id, status}`` with status SOLD, RETURNED or SELL_FAILED.
    """
    with transaction.atomic():
        reservation = _locked(order_id)
        if reservation is None:
            raise NotFound(f"No reservation for order {order_id}.")
        lines = _lines_of(reservation)
        state = reservation.state
        if state == ReservationState.ACTIVE:
            _move_all(lines, "sell")
            _ledger(lines, MovementKind.SELL, order_id=order_id, cause="paid", actor=actor)
            _mark_sold(reservation, lines)
            for cloth_id, cloth_lines in _by_cloth(lines).items():
                _after_commit(_sell_in_gate, cloth_id, reservation, cloth_lines)
            return {"order_id": order_id, "status": "SOLD"}
        if state in (ReservationState.SOLD, ReservationState.RETURNED):
            return {"order_id": order_id, "status": state}
        if reservation.sell_failed_at is not None:
            return {"order_id": order_id, "status": "SELL_FAILED"}
        if not lines:
            # Released before it was ever reserved (the order was not placed): nothing to sell.
            return _sell_failed(reservation, variant_id=None, reason="no_reservation")
        return _sell_released(reservation, lines, actor=actor)


def _mark_sold(reservation: Reservation, lines: list[Line]) -> None:
    reservation.state = ReservationState.SOLD
    reservation.save(update_fields=["state", "updated_at"])
    record_event(
        "StockSold",
        aggregate_type="reservation",
        aggregate_id=reservation.order_id,
        payload={
            "order_id": reservation.order_id,
            "member_id": reservation.member_id,
            "lines": _lines_payload(lines),
        },
    )


def _sell_in_gate(cloth_id: int, reservation: Reservation, lines: list[Line]) -> None:
    answer = gate.sell(
        cloth_id=cloth_id, order_id=reservation.order_id, member_id=reservation.member_id, lines=_pairs(lines)
    )
    if answer[0] not in ("OK", "ALREADY", "REACQUIRED"):
        # PostgreSQL holds these units as sold already; the gate just did not have them.
        logger.info(
            "order %s: gate of cloth %s answered %s to a sell; PostgreSQL has it",
            reservation.order_id,
            cloth_id,
            answer,
        )


def _sell_released(reservation: Reservation, lines: list[Line], *, actor: str) -> dict:
    order_id = reservation.order_id
    groups = _by_cloth(lines)
    taken: dict[int, list[Line]] = {}
    failed_variant = None
    try:
        for cloth_id, cloth_lines in groups.items():
            answer = _gate_call(
                cloth_id,
                lambda c=cloth_id, ls=cloth_lines: gate.sell(
                    cloth_id=c, order_id=order_id, member_id=reservation.member_id, lines=_pairs(ls)
                ),
            )
            if answer[0] in ("OK", "ALREADY", "REACQUIRED"):
                taken[cloth_id] = cloth_lines
            else:
                failed_variant = int(answer[1]) if answer[0] == "SOLD_OUT" else cloth_lines[0].variant_id
                break
    except redis.RedisError as exc:
        _undo(order_id, taken, state="S")
        raise UpstreamUnavailable("The stock gate is unavailable; try again.") from exc
    if failed_variant is None:
        try:
            with transaction.atomic():
                rows, short = [], []
                for line in lines:
                    row = _move(line.variant_id, line.quantity, "reacquire")
                    if row is None:
                        short.append(line.variant_id)
                    else:
                        rows.append(row)
                if short:
                    raise _Short(short)
                _ledger(lines, MovementKind.RESERVE, order_id=order_id, cause="paid after release", actor=actor)
                _ledger(lines, MovementKind.SELL, order_id=order_id, cause="paid after release", actor=actor)
                _mark_sold(reservation, lines)
                _stock_changed(rows)
            logger.warning("order %s: paid after its reservation was released; units taken again", order_id)
            return {"order_id": order_id, "status": "SOLD"}
        except _Short as exc:
            failed_variant = exc.variants[0]
            _undo(order_id, taken, short=set(exc.variants), state="S")
            taken = {}
    _undo(order_id, taken, state="S")
    return _sell_failed(reservation, variant_id=failed_variant, reason="released_and_sold_out")


def _sell_failed(reservation: Reservation, *, variant_id: int | None, reason: str) -> dict:
    reservation.sell_failed_at = timezone.now()
    reservation.save(update_fields=["sell_failed_at", "updated_at"])
    record_event(
        "StockSellFailed",
        aggregate_type="reservation",
        aggregate_id=reservation.order_id,
        payload={
            "order_id": reservation.order_id,
            "member_id": reservation.member_id,
            "reason": reason,
            "variant_id": variant_id,
        },
    )
    logger.warning(
        "order %s: paid but nothing can be sold (%s, variant %s); StockSellFailed",
        reservation.order_id,
        reason,
        variant_id,
    )
    return {"order_id": reservation.order_id, "status": "SELL_FAILED", "variant_id": variant_id}


def return_reservation(*, order_id: int, reason: str = "", actor: str = "") -> dict:
    """Put a refunded order's sold units back on sale, once."""
    with transaction.atomic():
        reservation = _locked(order_id)
        if reservation is None:
            raise NotFound(f"No reservation for order {order_id}.")
        lines = _lines_of(reservation)
        if reservation.state == ReservationState.SOLD:
            rows = _move_all(lines, "return")
            _ledger(lines, MovementKind.RETURN, order_id=order_id, cause=reason or "refunded", actor=actor)
            reservation.state = ReservationState.RETURNED
            reservation.save(update_fields=["state", "updated_at"])
            record_event(
                "StockReturned",
                aggregate_type="reservation",
                aggregate_id=order_id,
                payload={
                    "order_id": order_id,
                    "member_id": reservation.member_id,
                    "lines": _lines_payload(lines),
                },
            )
            _stock_changed(rows)
        elif reservation.state != ReservationState.RETURNED:
            raise IllegalTransition(f"This order's stock is {reservation.state.lower()}, not sold.", order_id=order_id)
        for cloth_id in reservation.cloth_ids:
            _after_commit(gate.give_back_sold, cloth_id=cloth_id, order_id=order_id)
    return {"order_id": order_id, "status": ReservationState.RETURNED.value, "lines": _lines_payload(lines)}


def release_expired_reservations(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Release ACTIVE reservations past deadline + grace: none leaks if the order side never says."""
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=settings.INVENTORY_RESERVATION_GRACE_SECONDS)
    order_ids = list(
        Reservation.objects.filter(state=ReservationState.ACTIVE, deadline__lt=cutoff)
        .order_by("deadline")
        .values_list("order_id", flat=True)[:limit]
    )
    released = 0
    for order_id in order_ids:
        try:
            release_reservation(order_id=order_id, reason="deadline_passed", actor="inventory:expiry")
            released += 1
        except IllegalTransition:
            pass  # paid in the meantime
    if released:
        logger.info("released %d reservations past their deadline", released)
    return released


def repair_gate(*, cloth_ids: list[int] | None = None, min_age_seconds: float | None = None) -> dict:
    """Finish the gate updates that a crash, a Redis error or a concurrent rebuild left undone.

    Every path changes PostgreSQL first and the gate after, so what can be left behind is a
    gate record still holding units that PostgreSQL has released, sold or returned, or
    never reserved at all (the process died between the two). Each repair is the same
    idempotent, state-checked gate step the normal path runs, decided by PostgreSQL's word:

    - PostgreSQL released or returned the order, the gate still holds it reserved: release.
    - PostgreSQL sold it, the gate still holds it reserved: sell.
    - PostgreSQL returned it, the gate still holds it sold: give back.
    - PostgreSQL never heard of it, and the gate reserved it more than ``min_age_seconds``
      ago: the order id is first marked released in PostgreSQL (a reserve still under way
      for it can then no longer be written), then the units go back.

    Records younger than ``min_age_seconds`` are left for the request that made them.
    Answers ``{"repaired": {kind: count}, "total": n}``; ``check_invariants`` lists any
    difference left (a gate holding *more* than PostgreSQL, which only a rebuild mends).
    """
    min_age = settings.INVENTORY_GATE_REPAIR_AGE_SECONDS if min_age_seconds is None else min_age_seconds
    cutoff_ms = gate.now_ms() - int(min_age * 1000)
    done: dict[str, int] = defaultdict(int)
    for cloth_id in cloth_ids if cloth_ids is not None else gate.loaded_cloth_ids():
        held = [r for r in gate.records(cloth_id) if r.at_ms is None or r.at_ms <= cutoff_ms]
        if not held:
            continue
        states: dict[int, str] = {}
        for start in range(0, len(held), 1000):  # a long-sold drop holds thousands of records
            chunk = [r.order_id for r in held[start : start + 1000]]
            states.update(Reservation.objects.filter(order_id__in=chunk).values_list("order_id", "state"))
        for record in held:
            kind = _repair_record(cloth_id, record, states.get(record.order_id))
            if kind:
                done[kind] += 1
                logger.warning(
                    "order %s: gate of cloth %s held its units as %s, PostgreSQL disagreed; repaired (%s)",
                    record.order_id,
                    cloth_id,
                    "reserved" if record.state == "R" else "sold",
                    kind,
                )
    for cloth_id in cloth_ids if cloth_ids is not None else gate.loaded_cloth_ids():
        drift = _lasting_drift(cloth_id, cutoff_ms)
        if drift and gate.reload(cloth_id):
            done["reloaded"] += 1
            logger.warning(
                "gate of cloth %s disagreed with PostgreSQL beyond any record (%s); reloaded from PostgreSQL",
                cloth_id,
                drift,
            )
    return {"repaired": dict(done), "total": sum(done.values())}


def _drift(cloth_id: int, cutoff_ms: int) -> tuple:
    """How the gate of ``cloth_id`` differs from PostgreSQL, leaving out records younger than ``cutoff_ms``.

    Answers (per-variant gate minus PostgreSQL, orders only the gate holds, orders only
    PostgreSQL holds); all empty when they agree.
    """
    read = selectors.gate_against_postgresql(cloth_id, young_after_ms=cutoff_ms)
    if read is None:
        return ((), (), ())
    pg_avail, gate_avail, pg_orders, gate_orders = read
    deltas = tuple(sorted((v, gate_avail.get(v, 0) - n) for v, n in pg_avail.items() if gate_avail.get(v, 0) != n))
    return deltas, tuple(sorted(gate_orders - pg_orders)), tuple(sorted(pg_orders - gate_orders))


def _lasting_drift(cloth_id: int, cutoff_ms: int, *, reads: int = 3, pause: float = 0.2) -> tuple | None:
    """The drift of ``cloth_id`` if the same one is seen on ``reads`` reads (requests in flight move it)."""
    import time

    seen = None
    for attempt in range(reads):
        if attempt:
            time.sleep(pause)
        drift = _drift(cloth_id, cutoff_ms)
        if not any(drift) or (seen is not None and drift != seen):
            return None
        seen = drift
    return seen


def _repair_record(cloth_id: int, record: gate.Record, pg_state: str | None) -> str | None:
    order_id = record.order_id
    if record.state == "R":
        if pg_state is None:
            try:
                with transaction.atomic():
                    Reservation.objects.create(
                        order_id=order_id,
                        member_id=record.member_id,
                        cloth_ids=[cloth_id],
                        state=ReservationState.RELEASED,
                        deadline=timezone.now(),
                        release_reason="never_written",
                    )
            except IntegrityError:
                return None  # written just now after all: the next sweep sees its state
            answer = gate.release(cloth_id=cloth_id, order_id=order_id)
            return "never_written" if answer[0] == "OK" else None
        if pg_state in (ReservationState.RELEASED, ReservationState.RETURNED):
            return "released" if gate.release(cloth_id=cloth_id, order_id=order_id)[0] == "OK" else None
        if pg_state == ReservationState.SOLD:
            answer = gate.sell(cloth_id=cloth_id, order_id=order_id, member_id=record.member_id, lines=record.lines)
            return "sold" if answer[0] == "OK" else None
    elif record.state == "S" and pg_state == ReservationState.RETURNED:
        return "returned" if gate.give_back_sold(cloth_id=cloth_id, order_id=order_id)[0] == "OK" else None
    return None


def report_unsellable(*, order_id: int, member_id: int | None) -> None:
    """A paid order this service holds nothing for: tell the order side to refund."""
    with transaction.atomic():
        record_event(
            "StockSellFailed",
            aggregate_type="reservation",
            aggregate_id=order_id,
            payload={
                "order_id": order_id,
                "member_id": member_id,
                "reason": "no_reservation",
                "variant_id": None,
            },
        )
    logger.error("order %s paid but no reservation exists; StockSellFailed", order_id)

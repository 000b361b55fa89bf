"""Reads of stock: which cloth a variant belongs to, counts and reservations for other services."""

from __future__ import annotations

import datetime as dt
import threading

from django.conf import settings
from django.core.cache import cache

from inventory.models import Reservation, ReservationState, StockItem

# A variant never changes cloth, so each process remembers it: a warm reserve (or a
# sold-out answer) then needs no PostgreSQL read at all.
_cloth_of: dict[int, int] = {}
_cloth_of_lock = threading.Lock()

_STOCK_KEY = "stock:{}"


def cloth_of_variants(variant_ids: list[int]) -> dict[int, int]:
    """{variant_id: cloth_id} for the known ones; unknown ids are left out."""
    missing = [v for v in variant_ids if v not in _cloth_of]
    if missing:
        found = dict(StockItem.objects.filter(variant_id__in=missing).values_list("variant_id", "cloth_id"))
        with _cloth_of_lock:
            _cloth_of.update(found)
    return {v: _cloth_of[v] for v in variant_ids if v in _cloth_of}


def forget_cached_variants() -> None:
    """For tests that reuse variant ids across a fresh database."""
    with _cloth_of_lock:
        _cloth_of.clear()


def _item_dict(item: StockItem) -> dict:
    return {
        "variant_id": item.variant_id,
        "cloth_id": item.cloth_id,
        "total": item.total,
        "available": item.available,
        "reserved": item.reserved,
        "sold": item.sold,
    }


def stock_of_variants(variant_ids: list[int], *, from_cache: bool | None = None) -> list[dict]:
    """Counts of the given variants (unknown ones left out), in the order asked.

    With ``STOCK_READS_FROM_CACHE`` the answer may be up to ``INVENTORY_STOCK_CACHE_SECONDS``
    old: fine for showing stock, never used to decide a sale (the gate does that).
    """
    wanted = list(dict.fromkeys(variant_ids))
    use_cache = settings.STOCK_READS_FROM_CACHE if from_cache is None else from_cache
    found: dict[int, dict] = {}
    if use_cache:
        cached = cache.get_many([_STOCK_KEY.format(v) for v in wanted])  # {} in an outage: PostgreSQL answers
        found = {item["variant_id"]: item for item in cached.values()}
    missing = [v for v in wanted if v not in found]
    if missing:
        fresh = {i.variant_id: _item_dict(i) for i in StockItem.objects.filter(variant_id__in=missing)}
        found.update(fresh)
        if use_cache and fresh:
            cache.set_many(
                {_STOCK_KEY.format(v): d for v, d in fresh.items()}, timeout=settings.INVENTORY_STOCK_CACHE_SECONDS
            )
    return [found[v] for v in wanted if v in found]


def invalidate_stock_cache(variant_ids: list[int]) -> None:
    # In an outage this does nothing: entries expire within seconds anyway.
    cache.delete_many([_STOCK_KEY.format(v) for v in variant_ids])


def reservation_lines(reservation: Reservation) -> list[dict]:
    return [
        {"variant_id": line.variant_id, "cloth_id": line.cloth_id, "quantity": line.quantity}
        for line in reservation.lines.all()
    ]


def reservation_answer(reservation: Reservation) -> dict:
    """The reserve endpoint's answer for an existing reservation."""
    status = "RESERVED" if reservation.state == "ACTIVE" else reservation.state
    return {
        "order_id": reservation.order_id,
        "member_id": reservation.member_id,
        "status": status,
        "lines": reservation_lines(reservation),
        "deadline": reservation.deadline,
    }


def reservation_states(order_ids: list[int]) -> list[dict]:
    """``[{order_id, state, sell_failed}]`` of the reservations of these orders (unknown ones left out)."""
    rows = Reservation.objects.filter(order_id__in=order_ids).values_list("order_id", "state", "sell_failed_at")
    return [{"order_id": o, "state": state, "sell_failed": failed is not None} for o, state, failed in rows]


def active_reservations(*, since: dt.datetime, until: dt.datetime, limit: int = 5000) -> list[dict]:
    """ACTIVE reservations made in ``[since, until)``: ``[{order_id, member_id, created_at}]``."""
    rows = (
        Reservation.objects.filter(state=ReservationState.ACTIVE, created_at__gte=since, created_at__lt=until)
        .order_by("created_at")
        .values("order_id", "member_id", "created_at")[:limit]
    )
    return [{**row, "created_at": row["created_at"].isoformat()} for row in rows]


def invariant_differences(*, with_gate: bool = True) -> tuple[int, list[dict]]:
    """Every way the stock disagrees with itself: (variants checked, differences).

    Per variant: counts within bounds; reserved and sold equal to what the reservations
    hold; every counter equal to the ledger replayed; and the gate's available units equal
    to PostgreSQL's (for clothes loaded in Redis).

    PostgreSQL is read in one snapshot. The gate follows PostgreSQL a moment after each
    commit, so a cloth whose gate disagrees is read again (both sides) before the
    difference is reported: a check during traffic reports drift, not requests in flight.
    """
    from django.db.models import Sum

    from inventory import gate
    from inventory.models import MovementKind, ReservationLine, ReservationState, StockMovement

    with gate.one_snapshot():
        items = list(StockItem.objects.all())
        held = {
            (v, s): n
            for v, s, n in ReservationLine.objects.filter(
                reservation__state__in=[ReservationState.ACTIVE, ReservationState.SOLD]
            )
            .values_list("variant_id", "reservation__state")
            .annotate(n=Sum("quantity"))
            .values_list("variant_id", "reservation__state", "n")
        }
        ledger: dict[int, dict[str, int]] = {}
        for v, kind, n in (
            StockMovement.objects.values_list("variant_id", "kind")
            .annotate(n=Sum("quantity"))
            .values_list("variant_id", "kind", "n")
        ):
            ledger.setdefault(v, {})[kind] = n
    diffs: list[dict] = []

    def diff(item: StockItem, what: str, expected, actual) -> None:
        if expected != actual:
            diffs.append(
                {
                    "variant_id": item.variant_id,
                    "cloth_id": item.cloth_id,
                    "check": what,
                    "expected": expected,
                    "actual": actual,
                }
            )

    for item in items:
        if min(item.total, item.reserved, item.sold, item.available) < 0:
            diffs.append(
                {
                    "variant_id": item.variant_id,
                    "cloth_id": item.cloth_id,
                    "check": "bounds",
                    "total": item.total,
                    "reserved": item.reserved,
                    "sold": item.sold,
                }
            )
        diff(
            item,
            "reserved = active reservations",
            held.get((item.variant_id, ReservationState.ACTIVE), 0),
            item.reserved,
        )
        diff(item, "sold = sold reservations", held.get((item.variant_id, ReservationState.SOLD), 0), item.sold)
        led = ledger.get(item.variant_id, {})
        g = led.get
        diff(item, "total = ledger", g(MovementKind.RESTOCK, 0) + g(MovementKind.CORRECT, 0), item.total)
        diff(
            item,
            "reserved = ledger",
            g(MovementKind.RESERVE, 0) - g(MovementKind.RELEASE, 0) - g(MovementKind.SELL, 0),
            item.reserved,
        )
        diff(item, "sold = ledger", g(MovementKind.SELL, 0) - g(MovementKind.RETURN, 0), item.sold)
        diff(item, "available + reserved + sold = total", item.total, item.available + item.reserved + item.sold)

    if with_gate:
        for cloth_id in sorted({item.cloth_id for item in items}):
            diffs.extend(_gate_differences(cloth_id))
    return len(items), diffs


def gate_against_postgresql(cloth_id: int, *, young_after_ms: int | None = None) -> tuple[dict, dict, set, set] | None:
    """One read of the gate of ``cloth_id`` and of PostgreSQL, for comparing them.

    Answers (PostgreSQL's available units by variant, the gate's, the orders PostgreSQL holds
    units for, the orders the gate holds records of), or None when the gate is not loaded.
    With ``young_after_ms``, a gate record made after it for an order PostgreSQL does not
    hold yet is left out with its units: it may be a reserve whose commit is under way.
    """
    from django.db.models import Q

    from inventory import gate

    with gate.one_snapshot():
        pg_avail = {item.variant_id: item.available for item in StockItem.objects.filter(cloth_id=cloth_id)}
        pg_orders = set(
            Reservation.objects.filter(
                Q(state=ReservationState.ACTIVE) | Q(state=ReservationState.SOLD), lines__cloth_id=cloth_id
            )
            .values_list("order_id", flat=True)
            .distinct()
        )
    snap = gate.snapshot(cloth_id)
    if not snap["loaded"]:
        return None
    gate_avail, gate_orders = dict(snap["avail"]), set(snap["orders"])
    if young_after_ms is not None:
        # Only the records PostgreSQL does not hold can be left out: those alone are read.
        for record in gate.records(cloth_id, of=gate_orders - pg_orders):
            if record.at_ms is not None and record.at_ms > young_after_ms:
                gate_orders.discard(record.order_id)
                for variant_id, quantity in record.lines:
                    gate_avail[variant_id] = gate_avail.get(variant_id, 0) + quantity
    return pg_avail, gate_avail, pg_orders, gate_orders


def _gate_differences(cloth_id: int, *, reads: int = 3, pause: float = 0.2) -> list[dict]:
    """The gate of ``cloth_id`` against PostgreSQL; a difference must survive ``reads`` reads."""
    import time

    found: list[dict] = []
    for attempt in range(reads):
        if attempt:
            time.sleep(pause)
        read = gate_against_postgresql(cloth_id)
        if read is None:
            return []  # loaded from PostgreSQL on first use: nothing to disagree with yet
        pg_avail, gate_avail, pg_orders, gate_orders = read
        found = [
            {
                "variant_id": variant_id,
                "cloth_id": cloth_id,
                "check": "gate available = PostgreSQL available",
                "expected": available,
                "actual": gate_avail.get(variant_id),
            }
            for variant_id, available in pg_avail.items()
            if gate_avail.get(variant_id) != available
        ]
        if gate_orders != pg_orders:
            found.append(
                {
                    "cloth_id": cloth_id,
                    "check": "gate records = active and sold reservations",
                    "only_in_gate": sorted(gate_orders - pg_orders),
                    "only_in_postgresql": sorted(pg_orders - gate_orders),
                }
            )
        if not found:
            return []
    return found


def drop_cloth_ids(*, hours: float) -> list[int]:
    """The clothes whose sale starts (or started) within ``hours`` of now: the drops being watched."""
    import datetime as dt

    from django.utils import timezone

    from inventory.models import ClothRule

    now, window = timezone.now(), dt.timedelta(hours=hours)
    return list(
        ClothRule.objects.filter(sale_starts_at__gte=now - window, sale_starts_at__lte=now + window)
        .order_by("cloth_id")
        .values_list("cloth_id", flat=True)
    )


def gate_drift_units(cloth_id: int) -> int:
    """How many units the gate of ``cloth_id`` is off from PostgreSQL, as ``check_invariants`` sees it
    (each variant's difference, plus one for each order only one side holds)."""
    units = 0
    for diff in _gate_differences(cloth_id):
        if "variant_id" in diff:
            units += abs((diff["actual"] or 0) - diff["expected"])
        else:
            units += len(diff["only_in_gate"]) + len(diff["only_in_postgresql"])
    return units

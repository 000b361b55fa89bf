"""The PostgreSQL counters: the one guarded update per stock move, and what a move announces.

Every move of stock (reserve, release, sell, reacquire, return, a change of the total) is
one guarded ``UPDATE`` in :func:`move`: the guard refuses any unit that is not there, so
PostgreSQL never oversells even when the gate in front of it is wrong.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection

from inventory.models import Reservation, ReservationLine, StockItem
from shared.contracts.inventory import ReservedLine, StockChanged, StockLevel
from shared.errors import IllegalTransition
from shared.messaging.events import record_events
from shared.reads import prepare

_TABLE = StockItem._meta.db_table


@dataclass(frozen=True)
class Line:
    """A number of units of one variant (of one cloth) that move together."""

    variant_id: int
    cloth_id: int
    quantity: int


class Short(Exception):
    """PostgreSQL's guard refused these variants' units: the gate had let them through wrongly."""

    def __init__(self, variants: list[int]):
        self.variants = variants


_UPDATES = {
    # kind: (SET clause, guard); each %s is the quantity
    "reserve": ("reserved = reserved + %s", "total - reserved - sold >= %s"),
    "release": ("reserved = reserved - %s", "reserved >= %s"),
    "sell": ("reserved = reserved - %s, sold = sold + %s", "reserved >= %s"),
    "reacquire": ("sold = sold + %s", "total - reserved - sold >= %s"),
    "return": ("sold = sold - %s", "sold >= %s"),
    "total": ("total = total + %s", "total + %s >= reserved + sold"),
}


def move_statement(variant_id: int, quantity: int, how: str) -> tuple[str, list[int]]:
    """The guarded ``UPDATE`` of one variant's counters, returning its new counts (no row when
    the guard refused): its SQL and values, for :func:`move` or a ``WITH`` clause."""
    set_clause, guard = _UPDATES[how]
    sql = (
        f"UPDATE {_TABLE} SET {set_clause}, version = version + 1, updated_at = now() "  # noqa: S608 - fixed SQL
        f"WHERE variant_id = %s AND {guard} "
        "RETURNING variant_id, cloth_id, total, reserved, sold, version"
    )
    return sql, [quantity] * set_clause.count("%s") + [variant_id] + [quantity] * guard.count("%s")


def move(variant_id: int, quantity: int, how: str) -> dict | None:
    """One guarded counter update; the row's new counts, or None when the guard refused."""
    sql, params = move_statement(variant_id, quantity, how)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    if row is None:
        return None
    return counts_of(row)


def counts_of(row: tuple) -> dict:
    """A counters row (as :func:`move_statement` returns it) as a dict, ``available`` included."""
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


def move_all(lines: list[Line], how: str) -> list[dict]:
    rows = []
    for line in lines:
        row = move(line.variant_id, line.quantity, how)
        if row is None:
            # PostgreSQL's counts disagree with its own reservation rows: stop, change nothing.
            raise IllegalTransition(f"Stock of variant {line.variant_id} does not allow {how} of {line.quantity}.")
        rows.append(row)
    return rows


def stock_changed(rows: list[dict]) -> None:
    """StockChanged per cloth, with the new counts of the variants that changed."""
    record_events(*stock_changed_events(rows))


def stock_changed_events(rows: list[dict]) -> list[StockChanged]:
    """The StockChanged events of :func:`stock_changed`, for a caller that writes them with others."""
    by_cloth: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_cloth[row["cloth_id"]].append(row)
    return [
        StockChanged(
            cloth_id=cloth_id,
            variants=[
                StockLevel(variant_id=r["variant_id"], available=r["available"], total=r["total"], version=r["version"])
                for r in items
            ],
        )
        for cloth_id, items in by_cloth.items()
    ]


def lines_payload(lines: list[Line]) -> list[dict]:
    return [{"variant_id": ln.variant_id, "cloth_id": ln.cloth_id, "quantity": ln.quantity} for ln in lines]


def reserved_lines(lines: list[Line]) -> list[ReservedLine]:
    """The lines as the inventory's events carry them."""
    return [ReservedLine(variant_id=ln.variant_id, cloth_id=ln.cloth_id, quantity=ln.quantity) for ln in lines]


def by_cloth(lines: list[Line]) -> dict[int, list[Line]]:
    grouped: dict[int, list[Line]] = defaultdict(list)
    for line in sorted(lines, key=lambda ln: (ln.cloth_id, ln.variant_id)):
        grouped[line.cloth_id].append(line)
    return dict(grouped)


def pairs(lines: list[Line]) -> list[tuple[int, int]]:
    return [(ln.variant_id, ln.quantity) for ln in lines]


_locked_reservation = prepare(lambda order_id: Reservation.objects.select_for_update().filter(order_id=order_id)[:1])
_lines = prepare(
    lambda reservation_id: ReservationLine.objects.filter(reservation_id=reservation_id).values(
        "variant_id", "cloth_id", "quantity"
    )
)


def locked_reservation(order_id: int) -> Reservation | None:
    """The order's reservation, locked as it is read (inside a transaction)."""
    return _locked_reservation.first(order_id=order_id)


def lines_of(reservation: Reservation) -> list[Line]:
    return [Line(ln["variant_id"], ln["cloth_id"], ln["quantity"]) for ln in _lines(reservation_id=reservation.pk)]

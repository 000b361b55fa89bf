"""The ledger: one StockMovement row per line of every move (``check_invariants`` replays it)."""

from __future__ import annotations

from inventory.models import StockMovement
from inventory.services.counters import Line
from shared.inserts import insert


def write_ledger(lines: list[Line], kind: str, *, order_id: int | None, cause: str, actor: str, sign: int = 1) -> None:
    insert(ledger_rows(lines, kind, order_id=order_id, cause=cause, actor=actor, sign=sign))


def ledger_rows(
    lines: list[Line], kind: str, *, order_id: int | None, cause: str, actor: str, sign: int = 1
) -> list[StockMovement]:
    """The ledger rows of a move, not written yet: for a caller that writes them with other
    rows in one statement (``shared.inserts.insert_together``)."""
    return [
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

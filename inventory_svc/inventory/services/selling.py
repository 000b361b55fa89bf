"""Selling a paid order's units, also after its reservation was released, and telling the
order side when nothing can be sold."""

from __future__ import annotations

import logging

import redis
from django.db import transaction
from django.utils import timezone

from inventory import gate
from inventory.gate import SOLD_ANSWERS, GateAnswer, RecordState
from inventory.models import MovementKind, Reservation, ReservationState, StockMovement
from inventory.services.counters import (
    Line,
    Short,
    by_cloth,
    lines_of,
    locked_reservation,
    move,
    move_all,
    pairs,
    reserved_lines,
    stock_changed,
)
from inventory.services.gate_steps import after_commit, call_gate, undo_in_gate
from inventory.services.ledger import ledger_rows
from shared.contracts.inventory import SellFailure, StockSellFailed, StockSold
from shared.errors import NotFound, UpstreamUnavailable
from shared.messaging.events import outbox_rows, record_event
from shared.updates import save_fields

logger = logging.getLogger(__name__)


def sell_reservation(*, order_id: int, actor: str = "") -> dict:
    """Commit a paid order's units as sold. Idempotent.

    A payment may arrive after its reservation was released (expired): then the units are
    taken again only if they are still free, atomically in the gate and guarded in
    PostgreSQL; if not, nothing is sold and ``StockSellFailed`` tells the order side to refund.
    Answers ``{order_id, status}`` with status SOLD, RETURNED or SELL_FAILED; raises
    ``NotFound`` when the order has no reservation.

    Inside a caller's transaction (the consumer's) it adds no savepoint, two round trips per
    payment: an error raised inside ends that transaction too. ``NotFound``, which the
    consumer catches to ask for a refund in the same transaction, is raised after the block.
    """
    with transaction.atomic(savepoint=False):
        reservation = locked_reservation(order_id)
        if reservation is not None:
            return _sell(reservation, order_id, actor)
    raise NotFound(f"No reservation for order {order_id}.")


def _sell(reservation: Reservation, order_id: int, actor: str) -> dict:
    """sell_reservation's work on the reservation it locked, inside its transaction."""
    lines = lines_of(reservation)
    state = reservation.state
    if state == ReservationState.ACTIVE:
        move_all(lines, "sell")
        _mark_sold(
            reservation, lines, ledger_rows(lines, MovementKind.SELL, order_id=order_id, cause="paid", actor=actor)
        )
        for cloth_id, cloth_lines in by_cloth(lines).items():
            after_commit(_sell_in_gate, cloth_id, reservation, cloth_lines)
        return {"order_id": order_id, "status": "SOLD"}
    if state in (ReservationState.SOLD, ReservationState.RETURNED):
        return {"order_id": order_id, "status": state}
    if reservation.sell_failed_at is not None:
        return {"order_id": order_id, "status": "SELL_FAILED"}
    if not lines:
        # Released before it was ever reserved (the order was not placed): nothing to sell.
        return _sell_failed(reservation, variant_id=None, reason=SellFailure.NO_RESERVATION)
    return _sell_released(reservation, lines, actor=actor)


def _mark_sold(reservation: Reservation, lines: list[Line], ledger: list[StockMovement]) -> None:
    """The reservation SOLD, its ledger rows and ``StockSold``: one statement."""
    reservation.state = ReservationState.SOLD
    save_fields(
        reservation,
        ["state", "updated_at"],
        inserting=[
            ledger,
            outbox_rows(
                StockSold(order_id=reservation.order_id, member_id=reservation.member_id, lines=reserved_lines(lines))
            ),
        ],
    )


def _sell_in_gate(cloth_id: int, reservation: Reservation, lines: list[Line]) -> None:
    answer = gate.sell(
        cloth_id=cloth_id, order_id=reservation.order_id, member_id=reservation.member_id, lines=pairs(lines)
    )
    if answer[0] not in SOLD_ANSWERS:
        # PostgreSQL holds these units as sold already; the gate just did not have them.
        logger.info(
            "order %s: gate of cloth %s answered %s to a sell; PostgreSQL has it",
            reservation.order_id,
            cloth_id,
            answer,
        )


def _sell_released(reservation: Reservation, lines: list[Line], *, actor: str) -> dict:
    order_id = reservation.order_id
    groups = by_cloth(lines)
    taken: dict[int, list[Line]] = {}
    failed_variant = None
    try:
        for cloth_id, cloth_lines in groups.items():
            answer = call_gate(
                cloth_id,
                lambda c=cloth_id, ls=cloth_lines: gate.sell(
                    cloth_id=c, order_id=order_id, member_id=reservation.member_id, lines=pairs(ls)
                ),
            )
            if answer[0] in SOLD_ANSWERS:
                taken[cloth_id] = cloth_lines
            else:
                failed_variant = int(answer[1]) if answer[0] == GateAnswer.SOLD_OUT else cloth_lines[0].variant_id
                break
    except redis.RedisError as exc:
        undo_in_gate(order_id, taken, state=RecordState.SOLD)
        raise UpstreamUnavailable("The stock gate is unavailable; try again.") from exc
    if failed_variant is None:
        try:
            with transaction.atomic():
                rows, short = [], []
                for line in lines:
                    row = move(line.variant_id, line.quantity, "reacquire")
                    if row is None:
                        short.append(line.variant_id)
                    else:
                        rows.append(row)
                if short:
                    raise Short(short)
                ledger = [
                    *ledger_rows(
                        lines, MovementKind.RESERVE, order_id=order_id, cause="paid after release", actor=actor
                    ),
                    *ledger_rows(lines, MovementKind.SELL, order_id=order_id, cause="paid after release", actor=actor),
                ]
                _mark_sold(reservation, lines, ledger)
                stock_changed(rows)
            logger.warning("order %s: paid after its reservation was released; units taken again", order_id)
            return {"order_id": order_id, "status": "SOLD"}
        except Short as exc:
            failed_variant = exc.variants[0]
            undo_in_gate(order_id, taken, short=set(exc.variants), state=RecordState.SOLD)
            taken = {}
    undo_in_gate(order_id, taken, state=RecordState.SOLD)
    return _sell_failed(reservation, variant_id=failed_variant, reason=SellFailure.RELEASED_AND_SOLD_OUT)


def _sell_failed(reservation: Reservation, *, variant_id: int | None, reason: SellFailure) -> dict:
    reservation.sell_failed_at = timezone.now()
    save_fields(reservation, ["sell_failed_at", "updated_at"])
    record_event(
        StockSellFailed(
            order_id=reservation.order_id, member_id=reservation.member_id, reason=reason, variant_id=variant_id
        )
    )
    logger.warning(
        "order %s: paid but nothing can be sold (%s, variant %s); StockSellFailed",
        reservation.order_id,
        reason,
        variant_id,
    )
    return {"order_id": reservation.order_id, "status": "SELL_FAILED", "variant_id": variant_id}


def report_unsellable(*, order_id: int, member_id: int | None) -> None:
    """A paid order this service holds nothing for: tell the order side to refund."""
    with transaction.atomic():
        record_event(
            StockSellFailed(order_id=order_id, member_id=member_id, reason=SellFailure.NO_RESERVATION, variant_id=None)
        )
    logger.error("order %s paid but no reservation exists; StockSellFailed", order_id)

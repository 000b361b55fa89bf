"""Giving units back: a reservation released (cancel, expiry, failed payment), sold units returned (refund)."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from inventory import gate
from inventory.models import MovementKind, Reservation, ReservationState
from inventory.services.counters import (
    lines_of,
    lines_payload,
    locked_reservation,
    move_all,
    reserved_lines,
    stock_changed_events,
)
from inventory.services.gate_steps import after_commit
from inventory.services.ledger import ledger_rows
from shared.contracts.inventory import StockReleased, StockReturned
from shared.errors import IllegalTransition, NotFound
from shared.messaging.events import outbox_rows
from shared.updates import save_fields

logger = logging.getLogger(__name__)


def release_reservation(*, order_id: int, reason: str = "", actor: str = "") -> dict:
    """Give an order's reserved units back (cancel, expiry, failed payment). Idempotent.

    PostgreSQL first, then the gate: a crash in between leaves the gate holding units it
    need not (never the reverse). Releasing an order never reserved leaves a RELEASED mark,
    so a reserve call arriving late for it cannot take units any more.
    """
    with transaction.atomic():
        reservation = locked_reservation(order_id)
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
        lines = lines_of(reservation)
        if reservation.state == ReservationState.ACTIVE:
            rows = move_all(lines, "release")
            reservation.state = ReservationState.RELEASED
            reservation.release_reason = (reason or "released")[:64]
            # The new state, the ledger rows and the events: one statement after the counters.
            save_fields(
                reservation,
                ["state", "release_reason", "updated_at"],
                inserting=[
                    ledger_rows(
                        lines, MovementKind.RELEASE, order_id=order_id, cause=reason or "released", actor=actor
                    ),
                    outbox_rows(
                        StockReleased(
                            order_id=order_id,
                            member_id=reservation.member_id,
                            reason=reservation.release_reason,
                            lines=reserved_lines(lines),
                        ),
                        *stock_changed_events(rows),
                    ),
                ],
            )
            logger.info("order %s: released (%s)", order_id, reason)
        elif reservation.state != ReservationState.RELEASED:
            raise IllegalTransition(
                f"This order's stock is {reservation.state.lower()}, not reserved.", order_id=order_id
            )
        # Also on a repeated release: finishes a gate update a crash may have skipped.
        for cloth_id in reservation.cloth_ids:
            after_commit(gate.release, cloth_id=cloth_id, order_id=order_id)
    return {"order_id": order_id, "status": ReservationState.RELEASED.value, "lines": lines_payload(lines)}


def return_reservation(*, order_id: int, reason: str = "", actor: str = "") -> dict:
    """Put a refunded order's sold units back on sale, once."""
    with transaction.atomic():
        reservation = locked_reservation(order_id)
        if reservation is None:
            raise NotFound(f"No reservation for order {order_id}.")
        lines = lines_of(reservation)
        if reservation.state == ReservationState.SOLD:
            rows = move_all(lines, "return")
            reservation.state = ReservationState.RETURNED
            save_fields(
                reservation,
                ["state", "updated_at"],
                inserting=[
                    ledger_rows(lines, MovementKind.RETURN, order_id=order_id, cause=reason or "refunded", actor=actor),
                    outbox_rows(
                        StockReturned(order_id=order_id, member_id=reservation.member_id, lines=reserved_lines(lines)),
                        *stock_changed_events(rows),
                    ),
                ],
            )
        elif reservation.state != ReservationState.RETURNED:
            raise IllegalTransition(f"This order's stock is {reservation.state.lower()}, not sold.", order_id=order_id)
        for cloth_id in reservation.cloth_ids:
            after_commit(gate.give_back_sold, cloth_id=cloth_id, order_id=order_id)
    return {"order_id": order_id, "status": ReservationState.RETURNED.value, "lines": lines_payload(lines)}

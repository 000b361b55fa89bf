"""The gate repair: finish the gate steps a crash or a Redis error left undone, by PostgreSQL's word."""

from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from inventory import gate, selectors
from inventory.gate import GateAnswer, RecordState
from inventory.models import Reservation, ReservationState

logger = logging.getLogger(__name__)


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
                    "reserved" if record.state == RecordState.RESERVED else "sold",
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
    if record.state == RecordState.RESERVED:
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
            return "never_written" if answer[0] == GateAnswer.OK else None
        if pg_state in (ReservationState.RELEASED, ReservationState.RETURNED):
            return "released" if gate.release(cloth_id=cloth_id, order_id=order_id)[0] == GateAnswer.OK else None
        if pg_state == ReservationState.SOLD:
            answer = gate.sell(cloth_id=cloth_id, order_id=order_id, member_id=record.member_id, lines=record.lines)
            return "sold" if answer[0] == GateAnswer.OK else None
    elif record.state == RecordState.SOLD and pg_state == ReservationState.RETURNED:
        answer = gate.give_back_sold(cloth_id=cloth_id, order_id=order_id)
        return "returned" if answer[0] == GateAnswer.OK else None
    return None

"""Calling the gate from a service: load a cloth on a miss, follow a commit, undo what PostgreSQL refused.

PostgreSQL changes first and the gate after, so a gate step that fails can only leave the
gate holding fewer units than PostgreSQL: a unit briefly unsellable, never one sold twice.
``repair_gate`` finishes what these leave undone.
"""

from __future__ import annotations

import logging

import redis
from django.db import transaction

from inventory import gate
from inventory.gate import GateAnswer, RecordState
from inventory.services.counters import Line

logger = logging.getLogger(__name__)


def after_commit(func, *args, **kwargs) -> None:
    """Run a Redis follow-up once the PostgreSQL change is committed; a failure there is logged."""

    def run() -> None:
        try:
            func(*args, **kwargs)
        except redis.RedisError as exc:
            # Safe: the gate then holds fewer units than PostgreSQL; repair_gate finishes it.
            logger.warning("stock gate not updated after commit (%s); the gate repair job finishes it", exc)

    transaction.on_commit(run)


def call_gate(cloth_id: int, call):
    """Run a gate script; load the cloth from PostgreSQL first if its keys are missing."""
    answer = call()
    for _ in range(2):
        if answer[0] == GateAnswer.NOT_LOADED:
            gate.ensure_loaded(cloth_id)
        elif answer[0] == GateAnswer.UNKNOWN_VARIANT:
            # A variant PostgreSQL knows but the gate does not: the gate is stale, load it again.
            gate.load(cloth_id)
        else:
            break
        answer = call()
    return answer


def undo_in_gate(
    order_id: int,
    held: dict[int, list[Line]],
    *,
    short: set[int] = frozenset(),
    state: RecordState = RecordState.RESERVED,
) -> None:
    """Drop the order's gate records this call left in ``state`` (RESERVED after a reserve, SOLD
    after a sell); units go back unless PostgreSQL said they were not there."""
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

"""The registry of event handlers, and applying one event exactly once.

A service declares its handlers in ``<app>/events.py``::

    @handles("PaymentCompleted", topic="payments")
    def on_payment_completed(event: Event) -> None: ...

The ``consume`` command subscribes to the topics of every registered handler. A handler
runs inside the transaction that also writes the inbox row, so its effect and the
"applied" mark commit together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils.module_loading import autodiscover_modules

from shared.messaging.events import Event
from shared.messaging.models import ProcessedEvent

logger = logging.getLogger(__name__)

Handler = Callable[[Event], None]


@dataclass(frozen=True)
class Registration:
    event_type: str
    topic: str
    func: Handler


_registry: dict[str, list[Registration]] = {}


def handles(event_type: str, *, topic: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        regs = _registry.setdefault(event_type, [])
        if not any(r.func is func for r in regs):
            regs.append(Registration(event_type, topic, func))
        return func

    return register


_discovered = False


def discover() -> dict[str, list[Registration]]:
    """The registry, after importing every app's ``events`` module once per process.

    Django's ``autodiscover_modules`` tries the import in every installed app each time it
    runs (a failed import, with its filesystem look-ups, per app without one), so it must
    not run per event.
    """
    global _discovered
    if not _discovered:
        autodiscover_modules("events")
        _discovered = True
    return _registry


def topics() -> list[str]:
    return sorted({r.topic for regs in discover().values() for r in regs})


def claim(consumer: str, events: list[Event]) -> set[str]:
    """Write the inbox rows of ``events`` for ``consumer``; the ids of those not applied before.

    Must run inside the transaction that applies them. One ``INSERT ... ON CONFLICT DO
    NOTHING`` (not check-then-insert): two deliveries racing each other both try the insert,
    the unique constraint lets one through, and the other sees no row of its own, without a
    savepoint around the insert.
    """
    if not events:
        return set()
    table = ProcessedEvent._meta.db_table
    rows = ", ".join(["(%s, %s, %s, now())"] * len(events))
    params: list[object] = []
    for event in events:
        params += [consumer, event.event_id, event.event_type]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (consumer, event_id, event_type, processed_at) VALUES {rows} "
            "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id",
            params,
        )
        return {str(event_id) for (event_id,) in cursor.fetchall()}


def apply_event(consumer: str, event: Event) -> bool:
    """Apply ``event`` once for ``consumer``. Returns False if it had been applied already."""
    regs = discover().get(event.event_type, [])
    if not regs:
        return False
    with transaction.atomic():
        if not claim(consumer, [event]):
            logger.info("event %s %s already applied by %s; skipped", event.event_type, event.event_id, consumer)
            return False
        for reg in regs:
            reg.func(event)
    return True

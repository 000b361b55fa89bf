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

from django.db import IntegrityError, transaction
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


def apply_event(consumer: str, event: Event) -> bool:
    """Apply ``event`` once for ``consumer``. Returns False if it had been applied already.

    Insert-first (not check-then-insert): two deliveries racing each other both try the
    insert, the unique constraint lets one through, the other rolls back and skips.
    """
    regs = discover().get(event.event_type, [])
    if not regs:
        return False
    with transaction.atomic():
        try:
            with transaction.atomic():
                ProcessedEvent.objects.create(consumer=consumer, event_id=event.event_id, event_type=event.event_type)
        except IntegrityError:
            logger.info("event %s %s already applied by %s; skipped", event.event_type, event.event_id, consumer)
            return False
        for reg in regs:
            reg.func(event)
    return True

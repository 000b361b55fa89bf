"""The registry of event handlers, and applying events exactly once.

A service declares its handlers in ``<app>/events.py``, by the event's contract
(``shared.contracts``), which names the topic::

    @handles(PaymentCompleted)
    def on_payment_completed(event: Event[PaymentCompleted]) -> None: ...

The handler gets the event with its payload read as the contract (``typed``). A payload
of an unknown version, or one that does not fit, never reaches it: the consumer
dead-letters it with the reason (``ContractError``).

A handler whose effect depends only on the newest of many events (a count that is
replaced, not added to) may take them in batches::

    @handles(StockChanged, batch=True)
    def on_stock_changed(events: list[Event[StockChanged]]) -> None: ...

The consumer then applies the consecutive events of such types that one poll brought
in one transaction (``apply_events``), and one by one only when that fails. Events no
handler here takes are read past without ending such a run.

A handler that takes one event at a time may still let a poll's events share that one
transaction (``together=True``): each is handled as on its own, in order, with its
request id on its log lines; a failure of any rolls the transaction back and the consumer
applies them one by one. A ``BEGIN``, a ``COMMIT`` and an inbox row's round trip are
then paid once per poll, not once per event::

    @handles(PaymentCompleted, together=True)
    def on_payment_completed(event: Event[PaymentCompleted]) -> None: ...

The ``consume`` command subscribes to the topics of every registered handler. A handler
runs inside the transaction that also writes the inbox row, so its effect and the
"applied" mark commit together or not at all.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils.module_loading import autodiscover_modules

from shared.contracts import Contract, from_payload
from shared.messaging.events import Event
from shared.messaging.models import ProcessedEvent
from shared.requests import request_id_var

logger = logging.getLogger(__name__)

Handler = Callable[[Event], None] | Callable[[list[Event]], None]


@dataclass(frozen=True)
class Registration:
    contract: type[Contract]
    func: Handler
    batch: bool = False
    together: bool = False  # one event per call, but a poll's events in one transaction

    @property
    def event_type(self) -> str:
        return self.contract.event_type()

    @property
    def topic(self) -> str:
        return self.contract.topic

    def apply(self, events: list[Event]) -> None:
        if self.batch:
            self.func(events)
        else:
            for event in events:
                token = request_id_var.set(event.request_id or "-")
                try:
                    self.func(event)
                finally:
                    request_id_var.reset(token)


_registry: dict[str, list[Registration]] = {}


def handles(contract: type[Contract], *, batch: bool = False, together: bool = False) -> Callable[[Handler], Handler]:
    if not (isinstance(contract, type) and issubclass(contract, Contract)):
        raise TypeError(f"handles() takes an event contract (shared.contracts), not {contract!r}")

    def register(func: Handler) -> Handler:
        regs = _registry.setdefault(contract.event_type(), [])
        if any(r.contract is not contract for r in regs):
            raise TypeError(f"two contracts are named {contract.event_type()}")
        if not any(r.func is func for r in regs):
            regs.append(Registration(contract, func, batch, together))
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


def typed(event: Event) -> Event:
    """``event`` with its payload read as its contract (as it is if already read, or if no
    handler here takes its type). Raises ``ContractError`` (a ValueError) naming the reason:
    an unknown version, or a payload that does not fit."""
    regs = discover().get(event.event_type)
    if not regs or isinstance(event.payload, Contract):
        return event
    return dataclasses.replace(
        event, payload=from_payload(regs[0].contract, event.payload, version=event.event_version)
    )


def handled(event_type: str) -> bool:
    """Whether any handler here takes ``event_type``."""
    return bool(discover().get(event_type))


def batched(event_type: str) -> bool:
    """Whether every handler of ``event_type`` takes batches, or a poll's events together
    (none: False)."""
    regs = discover().get(event_type, [])
    return bool(regs) and all(r.batch or r.together for r in regs)


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
    event = typed(event)
    with transaction.atomic():
        if not claim(consumer, [event]):
            logger.info("event %s %s already applied by %s; skipped", event.event_type, event.event_id, consumer)
            return False
        for reg in regs:
            reg.apply([event])
    return True


def apply_events(consumer: str, events: list[Event]) -> int:
    """Apply ``events`` (of batch-taking types) once for ``consumer``, all in one transaction.

    Each handler gets the events of its type not applied before, in their order. Any
    error rolls everything back (the caller then applies them one by one). Returns how
    many were applied now.
    """
    registry = discover()
    events = [typed(event) for event in events]
    with transaction.atomic():
        fresh = claim(consumer, [e for e in events if registry.get(e.event_type)])
        todo = []
        for event in events:
            if str(event.event_id) in fresh:
                fresh.discard(str(event.event_id))  # a duplicate inside the batch: once
                todo.append(event)
        by_type: dict[str, list[Event]] = {}
        for event in todo:
            by_type.setdefault(event.event_type, []).append(event)
        for event_type, of_type in by_type.items():
            for reg in registry[event_type]:
                reg.apply(of_type)
    return len(todo)

"""The event envelope and how a service records an event to publish.

Envelope (JSON, the Kafka message value)::

    {"event_id": "<uuid>", "event_type": "OrderPlaced", "event_version": 1,
     "occurred_at": "<ISO 8601>", "aggregate_type": "order", "aggregate_id": "42",
     "producer": "order", "request_id": "...", "payload": {...}}

The payload is a typed contract (``shared.contracts``): the contract names the topic, the
aggregate and the event's version. The topic is the aggregate's (``orders``, ``payments``,
``inventory``...) and the key its id, so one aggregate's events stay in order on one partition.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from shared.contracts import Contract, to_payload
from shared.inserts import insert, insert_together
from shared.requests import current_request_id

P = TypeVar("P")


def topic_name(base: str) -> str:
    return f"{settings.KAFKA_TOPIC_PREFIX}{base}"


def dead_letter_topic(base: str) -> str:
    return topic_name(f"{base}.dlq")


@dataclass(frozen=True)
class Event(Generic[P]):
    """An event as received. ``payload`` is the JSON object off the wire until the consumer
    reads it as its contract (``shared.messaging.handlers.typed``): handlers get
    ``Event[OrderPaid]`` and read ``event.payload.order_id``."""

    event_id: uuid.UUID
    event_type: str
    event_version: int
    occurred_at: dt.datetime
    aggregate_type: str
    aggregate_id: str
    payload: P
    producer: str = ""
    request_id: str = ""
    topic: str = field(default="", compare=False)

    @classmethod
    def from_json(cls, raw: bytes | str, topic: str = "") -> Event[dict[str, Any]]:
        """Parse a message value; raise ValueError on anything that is not a whole envelope."""
        try:
            data = json.loads(raw)
            return cls(
                event_id=uuid.UUID(str(data["event_id"])),
                event_type=str(data["event_type"]),
                event_version=int(data.get("event_version", 1)),
                occurred_at=dt.datetime.fromisoformat(data["occurred_at"]),
                aggregate_type=str(data["aggregate_type"]),
                aggregate_id=str(data["aggregate_id"]),
                payload=dict(data["payload"]),
                producer=str(data.get("producer", "")),
                request_id=str(data.get("request_id", "")),
                topic=topic,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not an event envelope: {exc}") from exc


class _Encoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return str(o)
        return super().default(o)


def envelope_json(row: Any) -> bytes:
    """Serialize an OutboxEvent row as the wire envelope."""
    return json.dumps(
        {
            "event_id": str(row.event_id),
            "event_type": row.event_type,
            "event_version": row.event_version,
            "occurred_at": row.occurred_at.isoformat(),
            "aggregate_type": row.aggregate_type,
            "aggregate_id": row.aggregate_id,
            "producer": settings.SERVICE_NAME,
            "request_id": row.request_id,
            "payload": row.payload,
        },
        cls=_Encoder,
    ).encode()


def record_event(contract: Contract):
    """Write ``contract`` to the outbox, inside the caller's transaction. Returns the row.

    Must be called inside ``transaction.atomic``: the event exists if and only if the
    change it announces was committed.
    """
    (row,) = record_events(contract)
    return row


def record_events(*contracts: Contract) -> list:
    """Write several events to the outbox in one ``INSERT``, in this order; returns the rows.

    As :func:`record_event`, inside the caller's transaction; one round trip for a change
    that announces several things (a reservation: its units, then the new stock counts).
    """
    return insert(outbox_rows(*contracts))


def outbox_rows(*contracts: Contract) -> list:
    """The outbox rows of ``contracts``, in this order, not written yet; the relay is woken
    when the caller's transaction commits.

    For a caller that writes them in the same statement as the change they announce
    (``shared.inserts.insert_together``), inside its transaction: :func:`record_events`
    without its own round trip.
    """
    from shared.messaging.publisher import wake_relay

    rows = event_rows(*contracts)
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must run inside transaction.atomic()")
    if rows:
        transaction.on_commit(wake_relay)
    return rows


def event_rows(*contracts: Contract) -> list:
    """The outbox rows of ``contracts``, in this order, not written yet, and nothing more:
    a caller writing them in a statement of its own outside a transaction wakes the relay
    (``shared.messaging.publisher.wake_relay``) once that statement has committed."""
    from shared.messaging.models import OutboxEvent

    for contract in contracts:
        if not isinstance(contract, Contract):
            raise TypeError(f"record_event takes an event contract (shared.contracts), not {type(contract).__name__}")
    if not contracts:
        return []
    now = timezone.now()
    request_id = current_request_id()
    return [
        OutboxEvent(
            event_type=contract.event_type(),
            event_version=contract.version,
            topic=contract.topic,
            aggregate_type=contract.aggregate_type,
            aggregate_id=str(contract.aggregate_id),
            payload=to_payload(contract),
            occurred_at=now,
            next_attempt_at=now,
            request_id=request_id,
        )
        for contract in contracts
    ]


def insert_announced(*groups: Sequence[Model], events: Sequence[Contract]) -> list[list[Model]]:
    """Insert ``groups`` (as ``shared.inserts.insert_together``) and the outbox rows of
    ``events`` in one statement; returns the groups, saved.

    One statement commits on its own: outside a transaction it needs no ``BEGIN`` and
    ``COMMIT`` around it, and the relay is woken once it returns; inside one, at its commit.
    Either way the events exist if and only if the rows they announce do.
    """
    from shared.messaging.publisher import wake_relay

    rows = event_rows(*events)
    *saved, _ = insert_together(*groups, rows)
    if rows:
        transaction.on_commit(wake_relay)  # outside a transaction: at once, the statement has committed
    return saved

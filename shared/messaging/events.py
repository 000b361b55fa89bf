"""The event envelope and how a service records an event to publish.

Envelope (JSON, the Kafka message value)::

    {"event_id": "<uuid>", "event_type": "OrderPlaced", "event_version": 1,
     "occurred_at": "<ISO 8601>", "aggregate_type": "order", "aggregate_id": "42",
     "producer": "order", "request_id": "...", "payload": {...}}

The topic is the aggregate's (``orders``, ``payments``, ``inventory``...) and the key its
id, so one aggregate's events stay in order on one partition.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from shared.requests import current_request_id

#: aggregate type -> topic name (before the configured prefix)
TOPICS = {
    "member": "members",
    "cloth": "catalog",
    "stock": "inventory",
    "reservation": "inventory",
    "order": "orders",
    "payment": "payments",
}


def topic_name(base: str) -> str:
    return f"{settings.KAFKA_TOPIC_PREFIX}{base}"


def dead_letter_topic(base: str) -> str:
    return topic_name(f"{base}.dlq")


@dataclass(frozen=True)
class Event:
    event_id: uuid.UUID
    event_type: str
    event_version: int
    occurred_at: dt.datetime
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]
    producer: str = ""
    request_id: str = ""
    topic: str = field(default="", compare=False)

    @classmethod
    def from_json(cls, raw: bytes | str, topic: str = "") -> Event:
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


def record_event(
    event_type: str,
    *,
    aggregate_type: str,
    aggregate_id: Any,
    payload: dict[str, Any],
    version: int = 1,
    topic: str | None = None,
):
    """Write an event to the outbox, inside the caller's transaction. Returns the row.

    Must be called inside ``transaction.atomic``: the event exists if and only if the
    change it announces was committed.
    """
    from shared.messaging.models import OutboxEvent
    from shared.messaging.publisher import wake_relay

    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        raise RuntimeError("record_event must run inside transaction.atomic()")
    now = timezone.now()
    row = OutboxEvent.objects.create(
        event_type=event_type,
        event_version=version,
        topic=topic or TOPICS[aggregate_type],
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=json.loads(json.dumps(payload, cls=_Encoder)),
        occurred_at=now,
        next_attempt_at=now,
        request_id=current_request_id(),
    )
    transaction.on_commit(wake_relay)
    return row

"""The consumer waits for a database that is down, longer each time, and never dead-letters for it."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.db import OperationalError

from shared.messaging import consumer as consumer_module
from shared.messaging import handlers
from shared.messaging.consumer import EventConsumer


class _Message:
    def __init__(self, value: bytes):
        self._value = value

    def topic(self) -> str:
        return "parcels"

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"1"


def _envelope() -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "ParcelWeighed",
            "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
            "aggregate_type": "parcel",
            "aggregate_id": "1",
            "payload": {"parcel_id": 1},
        }
    ).encode()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(consumer_module.time, "sleep", waited.append)
    return waited


def test_database_backoff_grows_while_the_database_stays_down(monkeypatch, sleeps):
    outages = 5
    calls = []

    def apply_event(group, event):
        calls.append(event.event_id)
        if len(calls) <= outages:
            raise OperationalError("the database is down")
        return True

    monkeypatch.setattr(handlers, "apply_event", apply_event)
    EventConsumer("backoff-group", retry_delay=0.2).process(_Message(_envelope()))

    assert len(calls) == outages + 1
    assert sleeps == sorted(sleeps) and sleeps[-1] > sleeps[0]
    assert max(sleeps) <= 5.0


def test_database_outage_does_not_count_toward_dead_lettering(monkeypatch, sleeps):
    calls = []

    def apply_event(group, event):
        calls.append(event.event_id)
        if len(calls) <= 10:
            raise OperationalError("the database is down")
        return True

    letters = []
    monkeypatch.setattr(handlers, "apply_event", apply_event)
    consumer = EventConsumer("backoff-group", max_attempts=3, retry_delay=0.2)
    monkeypatch.setattr(consumer, "dead_letter", lambda *a, **kw: letters.append(a))
    consumer.process(_Message(_envelope()))

    assert len(calls) == 11 and letters == []

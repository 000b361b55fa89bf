from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from orders import clients
from orders.tests.fakes import FakeUpstreams
from shared.messaging.events import Event
from shared.testing import event_payload


@pytest.fixture
def upstreams(monkeypatch, redis_db) -> FakeUpstreams:
    """Catalog with variants 101 (S) and 102 (M) of cloth 7, inventory with 10 of each."""
    fake = FakeUpstreams()
    fake.add_variant(101, size="S", price="59000.00")
    fake.add_variant(102, size="M", price="61000.50")
    monkeypatch.setattr(clients.upstream, "call_ok", fake.call_ok)
    return fake


@pytest.fixture
def place(member_client, upstreams):
    """place(member_id, lines=None, key=None) -> the HTTP response of POST /orders/add."""

    def do(member_id: int = 1, lines: list | None = None, key: str | None = None):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        body = {"lines": lines if lines is not None else [{"variant_id": 101, "quantity": 1}]}
        return member_client(member_id).post("/orders/add", body, format="json", **headers)

    return do


def make_event(
    event_type: str,
    payload: dict,
    *,
    aggregate_type: str = "payment",
    event_id: uuid.UUID | None = None,
    topic: str = "payments",
) -> Event:
    return Event(
        event_id=event_id or uuid.uuid4(),
        event_type=event_type,
        event_version=1,
        occurred_at=timezone.now() - dt.timedelta(seconds=1),
        aggregate_type=aggregate_type,
        aggregate_id=str(payload.get("payment_id", payload.get("order_id"))),
        payload=event_payload(event_type, **payload),
        producer="payment",
        topic=topic,
    )


@pytest.fixture(autouse=True)
def _forget_sold_out_marks():
    clients._sold_out.clear()
    yield
    clients._sold_out.clear()

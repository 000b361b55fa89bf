from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.utils import timezone

from payments import clients
from shared import errors
from shared.messaging.events import Event


class FakeOrders:
    """Answers ``GET /internal/orders/{id}`` like the order service."""

    def __init__(self) -> None:
        self.orders: dict[int, dict[str, Any]] = {}
        self.calls = 0

    def add(
        self,
        order_id: int,
        *,
        member_id: int = 1,
        total: str = "59000.00",
        status: str = "PENDING_PAYMENT",
        deadline_in: float = 600,
    ) -> None:
        self.orders[order_id] = {
            "order_id": order_id,
            "member_id": member_id,
            "status": status,
            "total": total,
            "lines": [],
            "created_at": timezone.now().isoformat(),
            "payment_deadline": (timezone.now() + dt.timedelta(seconds=deadline_in)).isoformat(),
        }

    def call_ok(self, service: str, method: str, path: str, **_kw: Any) -> Any:
        assert (service, method) == ("order", "GET") and path.startswith("/internal/orders/")
        self.calls += 1
        order = self.orders.get(int(path.rsplit("/", 1)[1]))
        if order is None:
            exc = errors.ShopError("No such order.")
            exc.status_code, exc.code = 404, "not_found"
            raise exc
        return order


@pytest.fixture
def orders(monkeypatch, redis_db) -> FakeOrders:
    """Order 1 of member 1 (59000.00) awaits payment."""
    fake = FakeOrders()
    fake.add(1)
    monkeypatch.setattr(clients.upstream, "call_ok", fake.call_ok)
    return fake


def make_event(event_type: str, payload: dict, *, event_id: uuid.UUID | None = None) -> Event:
    return Event(
        event_id=event_id or uuid.uuid4(),
        event_type=event_type,
        event_version=1,
        occurred_at=timezone.now(),
        aggregate_type="order",
        aggregate_id=str(payload["order_id"]),
        payload=payload,
        producer="order",
        topic="orders",
    )

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.utils import timezone

from payments import clients
from shared import errors
from shared.messaging.events import Event
from shared.testing import event_payload


class FakeOrders:
    """Answers ``GET /internal/orders/{id}`` like the order service."""

    def __init__(self) -> None:
        self.orders: dict[int, dict[str, Any]] = {}
        self.calls = 0
        self.holds: list[tuple[int, int]] = []
        #: order id -> status the order has by the time the payment asks to hold it
        #: (a cancel that came between the payment's read of the order and its charge)
        self.changed_before_hold: dict[int, str] = {}

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

    def call_ok(self, service: str, method: str, path: str, *, body: Any = None, **_kw: Any) -> Any:
        assert service == "order" and path.startswith("/internal/orders/")
        if method == "POST" and path.endswith("/payment-hold"):
            return self._hold(int(path.split("/")[3]), body["payment_id"])
        assert method == "GET"
        self.calls += 1
        return self._order(int(path.rsplit("/", 1)[1]))

    def _order(self, order_id: int) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            exc = errors.ShopError("No such order.")
            exc.status_code, exc.code = 404, "not_found"
            raise exc
        return order

    def _hold(self, order_id: int, payment_id: int) -> dict[str, Any]:
        order = self._order(order_id)
        if order_id in self.changed_before_hold:
            order["status"] = self.changed_before_hold.pop(order_id)
        if order["status"] != "PENDING_PAYMENT":
            raise errors.IllegalTransition(f"This order is {order['status']}; it does not await payment.")
        if dt.datetime.fromisoformat(order["payment_deadline"]) <= timezone.now():
            raise errors.IllegalTransition("This order's payment deadline has passed.")
        self.holds.append((order_id, payment_id))
        return {"order_id": order_id, "payment_id": payment_id, "held_until": order["payment_deadline"]}


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
        payload=event_payload(event_type, **payload),
        producer="order",
        topic="orders",
    )

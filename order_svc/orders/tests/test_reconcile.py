"""The saga's reconciliation: what it finds between orders, payments and reservations, and what it sends again.

The payment and inventory services are stood in for at the order service's client
functions (their boundary); the orders, transitions and outbox rows are real.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from orders import clients, reconcile, services
from orders.models import Order, OrderStatus
from orders.tests.conftest import make_event
from shared.messaging.handlers import apply_event

pytestmark = pytest.mark.django_db

LATER = dt.timedelta(minutes=5)  # reconcile "now": every change is past the grace period


class OtherServices:
    """What payment and inventory hold, and what the reconciliation asked of them."""

    def __init__(self, monkeypatch):
        self.charges: list[dict] = []
        self.states: dict[int, dict] = {}
        self.active: list[dict] = []
        self.replayed: list[tuple[str, str, list]] = []
        self.released: list[int] = []
        self.own_replayed: list[list[str]] = []
        monkeypatch.setattr(clients, "charged_payments", lambda *, since, until: list(self.charges))
        monkeypatch.setattr(clients, "reservations", self._reservations)
        monkeypatch.setattr(clients, "replay_events", self._replay)
        monkeypatch.setattr(clients, "release_stock", lambda *, order_id, reason: self.released.append(order_id))
        monkeypatch.setattr(reconcile, "replay", self._replay_own)

    def _reservations(self, order_ids, *, active_since=None, active_until=None):
        answer = {"reservations": [self.states[o] for o in order_ids if o in self.states]}
        if active_since is not None:
            answer["active"] = list(self.active)
        return answer

    def _replay(self, service, *, aggregate_type, aggregate_ids):
        self.replayed.append((service, aggregate_type, list(aggregate_ids)))
        return len(aggregate_ids)

    def _replay_own(self, rows):
        types = list(rows.order_by("id").values_list("event_type", flat=True))
        self.own_replayed.append(types)
        return len(types)

    def charge(self, order_id: int, payment_id: int) -> None:
        self.charges.append({"payment_id": payment_id, "order_id": order_id, "member_id": 1, "amount": "59000.00"})

    def reservation(self, order_id: int, state: str, sell_failed: bool = False) -> None:
        self.states[order_id] = {"order_id": order_id, "state": state, "sell_failed": sell_failed}


@pytest.fixture
def others(monkeypatch, place) -> OtherServices:
    return OtherServices(monkeypatch)


def _paid(order_id: int, payment_id: int):
    return make_event(
        "PaymentCompleted", {"payment_id": payment_id, "order_id": order_id, "member_id": 1, "amount": "59000.00"}
    )


def _run():
    return {r.order_id: r for r in reconcile.reconcile_saga(now=timezone.now() + LATER)}


def test_a_charge_the_pending_order_never_heard_of_is_announced_again(place, others):
    order_id = place(1).json()["order_id"]
    others.charge(order_id, 50)
    repairs = _run()
    assert repairs[order_id].problem == "charged, order PENDING_PAYMENT"
    assert others.replayed == [("payment", "payment", [50])]


def test_the_charge_that_paid_the_order_is_left_alone(place, others):
    order_id = place(1).json()["order_id"]
    apply_event("order", _paid(order_id, 50))
    others.charge(order_id, 50)
    others.reservation(order_id, "SOLD")
    assert _run() == {}
    assert others.replayed == [] and others.own_replayed == []


def test_a_charge_for_an_expired_order_that_never_arrived_is_announced_again(place, others):
    order_id = place(1).json()["order_id"]
    services.expire_overdue_orders(now=timezone.now() + dt.timedelta(hours=1))
    others.charge(order_id, 51)
    others.reservation(order_id, "RELEASED")
    repairs = _run()
    # PaymentCompleted again: the order then asks for the money back (late payment)
    assert repairs[order_id].problem == "charged, order EXPIRED"
    assert others.replayed == [("payment", "payment", [51])]


def test_a_refund_the_payment_service_never_got_is_asked_again(place, others):
    order_id = place(1).json()["order_id"]
    services.expire_overdue_orders(now=timezone.now() + dt.timedelta(hours=1))
    apply_event("order", _paid(order_id, 52))  # late payment: RefundRequested written
    others.charge(order_id, 52)  # ...but the payment is still charged
    others.reservation(order_id, "RELEASED")
    repairs = _run()
    assert repairs[order_id].problem == "charged, order EXPIRED, refund not done"
    assert others.own_replayed == [["RefundRequested"]]
    assert others.replayed == []


def test_a_paid_order_inventory_never_sold_gets_its_events_again(place, others):
    order_id = place(1).json()["order_id"]
    apply_event("order", _paid(order_id, 53))
    others.charge(order_id, 53)
    others.reservation(order_id, "ACTIVE")
    repairs = _run()
    assert repairs[order_id].problem == "order PAID, reservation ACTIVE"
    assert others.own_replayed == [["OrderPlaced", "OrderPaid"]]
    assert others.replayed == [("inventory", "reservation", [order_id])]


def test_a_cancelled_order_whose_units_are_still_held_gets_its_events_again(place, others, member_client):
    order_id = place(1).json()["order_id"]
    services.cancel_order(order_id=order_id, member_id=1, actor="member:1")
    others.reservation(order_id, "ACTIVE")
    repairs = _run()
    assert repairs[order_id].problem == "order CANCELLED, reservation ACTIVE"
    assert others.own_replayed == [["OrderPlaced", "OrderCancelled"]]


def test_orders_that_agree_with_inventory_are_left_alone(place, others):
    cancelled = place(1).json()["order_id"]
    services.cancel_order(order_id=cancelled, member_id=1, actor="member:1")
    others.reservation(cancelled, "RELEASED")
    pending = place(2).json()["order_id"]
    others.reservation(pending, "ACTIVE")
    assert _run() == {}


def test_units_held_for_an_order_never_written_are_released(place, others):
    written = place(1).json()["order_id"]
    others.active = [{"order_id": written, "member_id": 1}, {"order_id": written + 1000, "member_id": 1}]
    repairs = _run()
    assert repairs[written + 1000].action == "released"
    assert others.released == [written + 1000]


def test_changes_younger_than_the_grace_period_are_not_judged_yet(place, others):
    order_id = place(1).json()["order_id"]
    services.cancel_order(order_id=order_id, member_id=1, actor="member:1")
    others.reservation(order_id, "ACTIVE")  # the release is still on its way
    assert reconcile.reconcile_saga(now=timezone.now()) == []
    assert Order.objects.get().status == OrderStatus.CANCELLED


def test_a_refund_asked_moments_ago_is_not_asked_again(place, others):
    order_id = place(1).json()["order_id"]
    services.expire_overdue_orders(now=timezone.now() + dt.timedelta(hours=1))
    apply_event("order", _paid(order_id, 54))  # late payment: RefundRequested written just now
    others.charge(order_id, 54)  # the payment service has not refunded yet
    others.reservation(order_id, "RELEASED")
    Order.objects.filter(order_id=order_id).update(updated_at=timezone.now() - dt.timedelta(hours=1))
    # the order and the charge are old, the refund request is not: it is still on its way
    assert reconcile.reconcile_saga(now=timezone.now() + dt.timedelta(seconds=30), grace_seconds=60) == []
    assert others.own_replayed == [] and others.replayed == []

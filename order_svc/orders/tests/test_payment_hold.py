"""Cancel and pay are exclusive: a payment in progress holds the order, and a cancel then gets 409."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import services
from orders.models import Order, OrderStatus
from shared.errors import IllegalTransition
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _hold(internal_client, order_id: int, payment_id: int = 50):
    return internal_client.post(f"/internal/orders/{order_id}/payment-hold", {"payment_id": payment_id}, format="json")


def test_a_cancel_while_a_payment_is_in_progress_is_refused(place, member_client, internal_client):
    order_id = place(1).json()["order_id"]
    assert _hold(internal_client, order_id).status_code == 200
    r = member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
    assert Order.objects.get().status == OrderStatus.PENDING_PAYMENT
    assert not OutboxEvent.objects.filter(event_type="OrderCancelled").exists()


def test_a_cancelled_order_cannot_be_held_for_a_payment(place, member_client, internal_client):
    order_id = place(1).json()["order_id"]
    assert member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json").status_code == 200
    r = _hold(internal_client, order_id)
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"


def test_the_hold_is_idempotent_per_payment_and_refuses_another_payment(place, internal_client):
    order_id = place(1).json()["order_id"]
    assert _hold(internal_client, order_id, 50).status_code == 200
    assert _hold(internal_client, order_id, 50).status_code == 200  # a retry of the same payment
    assert _hold(internal_client, order_id, 51).status_code == 409


def test_a_hold_past_the_deadline_is_refused(place, internal_client):
    order_id = place(1).json()["order_id"]
    Order.objects.update(payment_deadline=timezone.now() - dt.timedelta(seconds=1))
    assert _hold(internal_client, order_id).status_code == 409


def test_an_unknown_order_is_404_and_bad_input_names_the_field(internal_client, db):
    assert _hold(internal_client, 999).status_code == 404
    r = internal_client.post("/internal/orders/1/payment-hold", {"payment_id": "x"}, format="json")
    assert r.status_code == 400 and "payment_id" in r.json()["error"]["fields"]


def test_the_hold_is_internal_only(place, anon_client):
    order_id = place(1).json()["order_id"]
    r = anon_client.post(f"/internal/orders/{order_id}/payment-hold", {"payment_id": 50}, format="json")
    assert r.status_code == 404


def test_the_hold_ends_after_its_time_and_a_cancel_then_passes(place, member_client, internal_client):
    order_id = place(1).json()["order_id"]
    assert _hold(internal_client, order_id).status_code == 200
    Order.objects.update(payment_hold_until=timezone.now() - dt.timedelta(seconds=1))
    assert member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json").status_code == 200


def test_expiry_waits_for_a_payment_in_progress(place, internal_client):
    order_id = place(1).json()["order_id"]
    assert _hold(internal_client, order_id).status_code == 200  # held just before the deadline
    Order.objects.update(payment_deadline=timezone.now() - dt.timedelta(seconds=1))
    assert services.expire_overdue_orders() == 0
    Order.objects.update(payment_hold_until=timezone.now() - dt.timedelta(seconds=1))
    assert services.expire_overdue_orders() == 1


@pytest.mark.django_db(transaction=True)  # as in the service: no transaction around the request
def test_a_hold_that_passes_is_one_guarded_update(place, internal_client):
    """The order's checks ride in the UPDATE's WHERE: no BEGIN, row lock read or COMMIT around it."""
    order_id = place(1).json()["order_id"]
    with CaptureQueriesContext(connection) as captured:
        r = _hold(internal_client, order_id, 50)
    assert r.status_code == 200 and r.json()["payment_id"] == 50
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    assert statements == ["UPDATE"], captured.captured_queries
    order = Order.objects.get()
    assert order.payment_hold_id == 50 and order.payment_hold_until.isoformat() == r.json()["held_until"]


@pytest.mark.django_db(transaction=True)
def test_cancels_racing_payment_holds_on_one_order_never_both_win(place):
    order_id = place(1).json()["order_id"]
    start = threading.Barrier(10)
    outcomes: list[tuple[str, bool]] = []

    def cancel():
        start.wait()
        try:
            services.cancel_order(order_id=order_id, member_id=1, actor="member:1")
            outcomes.append(("cancel", True))
        except IllegalTransition:
            outcomes.append(("cancel", False))
        finally:
            connections.close_all()

    def hold():
        start.wait()
        try:
            services.hold_for_payment(order_id=order_id, payment_id=50)
            outcomes.append(("hold", True))
        except IllegalTransition:
            outcomes.append(("hold", False))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=f) for f in (cancel, hold) * 5]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cancelled = [ok for what, ok in outcomes if what == "cancel" and ok]
    held = [ok for what, ok in outcomes if what == "hold" and ok]
    assert len(outcomes) == 10
    assert bool(cancelled) != bool(held), outcomes  # exactly one side won
    order = Order.objects.get(order_id=order_id)
    assert order.status == (OrderStatus.CANCELLED if cancelled else OrderStatus.PENDING_PAYMENT)
    assert len(cancelled) <= 1

"""Cancel, refund, reading orders: one's own only, and only the moves the state machine allows."""

from __future__ import annotations

import pytest

from orders import clients, services
from orders.models import ALLOWED_TRANSITIONS, Order, OrderStatus, OrderTransition
from orders.serializers import OrderSerializer
from shared.errors import IllegalTransition, UpstreamUnavailable
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _set_status(order_id: int, status: str) -> None:
    Order.objects.filter(order_id=order_id).update(status=status)


def test_cancel_an_unpaid_order_announces_the_release(place, member_client):
    order_id = place(1).json()["order_id"]
    resp = member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json")
    assert resp.status_code == 200 and resp.json()["status"] == "CANCELLED"
    event = OutboxEvent.objects.get(event_type="OrderCancelled")
    assert event.payload["order_id"] == order_id and event.payload["member_id"] == 1
    assert event.payload["lines"][0]["variant_id"] == 101 and event.payload["lines"][0]["quantity"] == 1
    assert OrderTransition.objects.filter(to_status="CANCELLED", cause="cancelled", actor="member:1").exists()


def test_a_cancel_answers_from_the_order_it_changed_without_reading_it_again(place, member_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    order_id = place(1).json()["order_id"]
    placed = member_client(1).get(f"/orders/detail/{order_id}").json()
    with CaptureQueriesContext(connection) as captured:
        resp = member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json")
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    assert statements[statements.index("WITH") + 1 :] == ["RELEASE"], captured.captured_queries  # the test's savepoint
    body = resp.json()
    assert body["status"] == "CANCELLED"
    assert {k: v for k, v in body.items() if k != "status"} == {k: v for k, v in placed.items() if k != "status"}


def test_a_cancel_answers_with_the_stock_already_given_back(place, member_client, upstreams):
    order_id = place(1).json()["order_id"]
    assert upstreams.stock[101] == 9
    assert member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json").status_code == 200
    # Released by the time the member reads the answer (the member's limit too), not when the
    # event is consumed; the event still goes out, and inventory applies it as a no-op.
    assert upstreams.released == [order_id] and upstreams.stock[101] == 10
    assert OutboxEvent.objects.filter(event_type="OrderCancelled", aggregate_id=str(order_id)).exists()


def test_a_cancel_succeeds_with_the_inventory_down_and_leaves_the_release_to_the_event(
    place, member_client, upstreams, monkeypatch
):
    order_id = place(1).json()["order_id"]
    real = upstreams.call_ok

    def inventory_down(service, method, path, **kw):
        if path.endswith("/release"):
            raise UpstreamUnavailable("The inventory service is unavailable.")
        return real(service, method, path, **kw)

    monkeypatch.setattr(clients.upstream, "call_ok", inventory_down)
    resp = member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json")
    assert resp.status_code == 200 and resp.json()["status"] == "CANCELLED"
    assert OutboxEvent.objects.filter(event_type="OrderCancelled", aggregate_id=str(order_id)).exists()


def test_cancel_a_paid_order_is_refused_pointing_to_refund(place, member_client):
    order_id = place(1).json()["order_id"]
    _set_status(order_id, OrderStatus.PAID)
    resp = member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json")
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "illegal_transition" and "refund" in resp.json()["error"]["message"]
    assert Order.objects.get().status == OrderStatus.PAID
    assert not OutboxEvent.objects.filter(event_type="OrderCancelled").exists()


def test_cancel_twice_is_refused_the_second_time(place, member_client):
    order_id = place(1).json()["order_id"]
    assert member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json").status_code == 200
    assert member_client(1).put("/orders/cancel", {"order_id": order_id}, format="json").status_code == 409
    assert OutboxEvent.objects.filter(event_type="OrderCancelled").count() == 1


def test_another_members_order_cannot_be_cancelled_refunded_or_read(place, member_client):
    order_id = place(1).json()["order_id"]
    intruder = member_client(2)
    assert intruder.put("/orders/cancel", {"order_id": order_id}, format="json").status_code == 404
    assert intruder.put("/orders/refund", {"order_id": order_id}, format="json").status_code == 404
    assert intruder.get(f"/orders/detail/{order_id}").status_code == 404
    assert Order.objects.get().status == OrderStatus.PENDING_PAYMENT


@pytest.mark.parametrize("body", [{}, {"order_id": "x"}, {"order_id": 0}])
def test_cancel_with_bad_input_names_the_field(member_client, body):
    resp = member_client(1).put("/orders/cancel", body, format="json")
    assert resp.status_code == 400 and "order_id" in resp.json()["error"]["fields"]


def test_refund_a_paid_order_is_accepted_and_asks_payment(place, member_client):
    order_id = place(1).json()["order_id"]
    _set_status(order_id, OrderStatus.PAID)
    resp = member_client(1).put("/orders/refund", {"order_id": order_id}, format="json")
    assert resp.status_code == 202 and resp.json()["status"] == "REFUND_REQUESTED"
    event = OutboxEvent.objects.get(event_type="RefundRequested")
    assert event.payload == {
        "order_id": order_id,
        "member_id": 1,
        "payment_id": None,
        "amount": "59000.00",
        "reason": "member_request",
    }


def test_refund_an_unpaid_order_is_refused(place, member_client):
    order_id = place(1).json()["order_id"]
    resp = member_client(1).put("/orders/refund", {"order_id": order_id}, format="json")
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "illegal_transition"


def test_every_move_outside_the_state_machine_is_refused(place):
    order_id = place(1).json()["order_id"]
    for start in OrderStatus.values:
        for target in OrderStatus.values:
            _set_status(order_id, start)
            order = Order.objects.get(order_id=order_id)
            if target in ALLOWED_TRANSITIONS[start]:
                services.lifecycle.transition(order, target, cause="test")
                assert Order.objects.get(order_id=order_id).status == target
            else:
                with pytest.raises(IllegalTransition):
                    services.lifecycle.transition(order, target, cause="test")
                assert Order.objects.get(order_id=order_id).status == start


def test_detail_shows_ones_own_order(place, member_client):
    placed = place(1).json()
    resp = member_client(1).get(f"/orders/detail/{placed['order_id']}")
    assert resp.status_code == 200 and resp.json() == placed


def test_list_is_ones_own_paginated_newest_first(place, member_client, django_assert_max_num_queries):
    ids = [place(1).json()["order_id"] for _ in range(3)]
    place(2)
    with django_assert_max_num_queries(3):
        resp = member_client(1).get("/orders/list/1?page_size=2")
    body = resp.json()
    assert resp.status_code == 200 and body["count"] == 3 and body["next"]
    assert [o["order_id"] for o in body["results"]] == ids[::-1][:2]
    assert body["results"][0]["lines"][0]["variant_id"] == 101
    assert member_client(1).get("/orders/list/1?page=2&page_size=2").json()["results"][0]["order_id"] == ids[0]


def test_list_of_another_member_is_refused(member_client):
    resp = member_client(1).get("/orders/list/2")
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "permission_denied"


def test_internal_order_is_for_services_only(place, internal_client, member_client, anon_client):
    order_id = place(3).json()["order_id"]
    resp = internal_client.get(f"/internal/orders/{order_id}")
    assert resp.status_code == 200
    body = resp.json()
    assert body["member_id"] == 3 and body["status"] == "PENDING_PAYMENT" and body["total"] == "59000.00"
    assert body["payment_deadline"]
    # the order's own facts, written as the member's answer writes them; its lines are not read
    public = OrderSerializer(Order.objects.get(order_id=order_id)).data
    assert body == {
        key: public[key] for key in ("order_id", "member_id", "status", "total", "created_at", "payment_deadline")
    }
    assert anon_client.get(f"/internal/orders/{order_id}").status_code == 404
    assert internal_client.get("/internal/orders/999999").status_code == 404


def test_every_answer_of_an_order_is_the_order_serializers(place, member_client):
    placed = place(3)
    order_id = placed.json()["order_id"]
    written = OrderSerializer(Order.objects.get(order_id=order_id)).data
    assert placed.json() == written and len(written["lines"]) >= 1
    assert member_client(3).get(f"/orders/detail/{order_id}").json() == written
    cancelled = member_client(3).put("/orders/cancel", {"order_id": order_id}, format="json")
    assert cancelled.status_code == 200
    assert cancelled.json() == OrderSerializer(Order.objects.get(order_id=order_id)).data

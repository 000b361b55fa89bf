"""The ops screens: search by member and item, and admin actions through the same services."""

from __future__ import annotations

import pytest

from orders.models import Order, OrderStatus

pytestmark = pytest.mark.django_db


def test_admin_finds_orders_by_member_and_variant_and_shows_events(place, admin_client):
    order_id = place(4).json()["order_id"]
    assert str(order_id) in admin_client.get("/admin/orders/order/?q=4").content.decode()
    assert str(order_id) in admin_client.get("/admin/orders/order/?q=101").content.decode()
    assert admin_client.get("/admin/orders/order/?q=not-a-number").status_code == 200
    assert admin_client.get("/admin/orders/order/?status__exact=PENDING_PAYMENT").status_code == 200
    page = admin_client.get(f"/admin/orders/order/{order_id}/change/").content.decode()
    assert "OrderPlaced" in page and "placed" in page


def test_admin_cancel_action_uses_the_service(place, admin_client):
    order_id = place(4).json()["order_id"]
    resp = admin_client.post("/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [order_id]})
    assert resp.status_code == 302
    order = Order.objects.get()
    assert order.status == OrderStatus.CANCELLED
    assert order.transitions.last().actor == "admin:admin"


def test_admin_refund_action_refuses_an_unpaid_order(place, admin_client):
    order_id = place(4).json()["order_id"]
    admin_client.post("/admin/orders/order/", {"action": "refund_orders", "_selected_action": [order_id]})
    assert Order.objects.get().status == OrderStatus.PENDING_PAYMENT


def test_admin_lists_show_each_orders_items_and_link_to_its_reservation_and_payment(place, admin_client):
    order_id = place(4).json()["order_id"]
    line = Order.objects.get().lines.get()
    page = admin_client.get("/admin/orders/order/").content.decode()
    assert f"{line.name} {line.size} ×{line.quantity}" in page
    assert f"/admin/inventory/reservation/?order_id={order_id}" in page
    assert f"/admin/payments/payment/?order_id={order_id}" in page

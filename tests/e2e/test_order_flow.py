"""Orders end to end through the gateway: wishlist → order → pay → PAID, cancel, refund, privacy."""

from __future__ import annotations

import uuid

from .conftest import wait_for

CARD_OK = "4242424242424242"


def _stock(gw, token: str, cloth_id: int, variant_id: int) -> int:
    r = gw.get(f"/cloth/detail/{cloth_id}", token=token)
    assert r.status_code == 200, r.text
    return next(v["stock"] for v in r.json()["variants"] if v["variant_id"] == variant_id)


def _order(gw, token: str, order_id: int) -> dict:
    r = gw.get(f"/orders/detail/{order_id}", token=token)
    assert r.status_code == 200, r.text
    return r.json()


def _drop(create_drop, stock: int = 3) -> tuple[int, int]:
    drop = create_drop(sizes=f"M:{stock}", limit=2)
    return drop["cloth_id"], drop["variants"][0]["variant_id"]


def test_wishlist_order_pay_and_the_stock_is_sold(gw, buyer, create_drop):
    token = buyer["token"]
    cloth_id, variant_id = _drop(create_drop)
    assert gw.post("/wishlist/add", json={"variant_id": variant_id, "quantity": 1}, token=token).status_code == 201
    items = gw.get("/wishlist", token=token).json()["items"]
    assert [i["variant_id"] for i in items] == [variant_id]

    r = gw.post("/orders/add/Wishlist", json={}, token=token)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "PENDING_PAYMENT" and order["member_id"] == buyer["member_id"]
    assert gw.get("/wishlist", token=token).json()["items"] == []
    wait_for(lambda: _stock(gw, token, cloth_id, variant_id) == 2, what="shown stock after the reservation")

    r = gw.post("/payment", json={"order_id": order["order_id"]}, token=token)
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == order["total"]
    r = gw.put(f"/payment/{order['order_id']}", json={"card_number": CARD_OK}, token=token)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
    wait_for(lambda: _order(gw, token, order["order_id"])["status"] == "PAID", what="order PAID")
    assert _stock(gw, token, cloth_id, variant_id) == 2  # sold, not given back

    # the same completion again: the same answer, no second charge
    again = gw.put(f"/payment/{order['order_id']}", json={"card_number": CARD_OK}, token=token)
    assert again.status_code == 200 and again.json()["payment_id"] == r.json()["payment_id"]


def test_same_idempotency_key_gives_the_same_order(gw, buyer, create_drop):
    _, variant_id = _drop(create_drop)
    key = uuid.uuid4().hex
    body = {"lines": [{"variant_id": variant_id, "quantity": 1}]}
    first = gw.post("/orders/add", json=body, token=buyer["token"], headers={"Idempotency-Key": key})
    second = gw.post("/orders/add", json=body, token=buyer["token"], headers={"Idempotency-Key": key})
    assert first.status_code == 201 and second.status_code in (200, 201)
    assert first.json()["order_id"] == second.json()["order_id"]


def test_sold_out_answer_and_nothing_written(gw, buyer, join_member, login, create_drop):
    _, variant_id = _drop(create_drop, stock=1)
    body = {"lines": [{"variant_id": variant_id, "quantity": 1}]}
    assert gw.post("/orders/add", json=body, token=buyer["token"]).status_code == 201
    other = login(join_member())
    r = gw.post("/orders/add", json=body, token=other["access_token"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "sold_out"
    assert gw.get(f"/orders/list/{other['member_id']}", token=other["access_token"]).json()["count"] == 0


def test_cancel_gives_the_stock_back_and_a_paid_order_is_refunded(gw, buyer, create_drop):
    token = buyer["token"]
    cloth_id, variant_id = _drop(create_drop)
    body = {"lines": [{"variant_id": variant_id, "quantity": 1}]}

    first = gw.post("/orders/add", json=body, token=token).json()
    r = gw.put("/orders/cancel", json={"order_id": first["order_id"]}, token=token)
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
    wait_for(lambda: _stock(gw, token, cloth_id, variant_id) == 3, what="stock back after cancel")

    second = gw.post("/orders/add", json=body, token=token).json()
    gw.post("/payment", json={"order_id": second["order_id"]}, token=token)
    assert gw.put(f"/payment/{second['order_id']}", json={"card_number": CARD_OK}, token=token).status_code == 200
    wait_for(lambda: _order(gw, token, second["order_id"])["status"] == "PAID", what="order PAID")
    r = gw.put("/orders/cancel", json={"order_id": second["order_id"]}, token=token)
    assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition"
    r = gw.put("/orders/refund", json={"order_id": second["order_id"]}, token=token)
    assert r.status_code == 202 and r.json()["status"] == "REFUND_REQUESTED"
    wait_for(lambda: _order(gw, token, second["order_id"])["status"] == "REFUNDED", what="order REFUNDED")
    wait_for(lambda: _stock(gw, token, cloth_id, variant_id) == 3, what="stock back after refund")


def test_another_members_orders_and_payments_are_unreachable(gw, buyer, join_member, login, create_drop):
    _, variant_id = _drop(create_drop)
    order = gw.post(
        "/orders/add", json={"lines": [{"variant_id": variant_id, "quantity": 1}]}, token=buyer["token"]
    ).json()
    intruder = login(join_member())["access_token"]
    assert gw.get(f"/orders/detail/{order['order_id']}", token=intruder).status_code == 404
    assert gw.get(f"/orders/list/{buyer['member_id']}", token=intruder).status_code == 403
    assert gw.put("/orders/cancel", json={"order_id": order["order_id"]}, token=intruder).status_code == 404
    assert gw.post("/payment", json={"order_id": order["order_id"]}, token=intruder).status_code == 404
    assert gw.put(f"/payment/{order['order_id']}", json={"card_number": CARD_OK}, token=intruder).status_code == 404
    assert gw.get(f"/internal/orders/{order['order_id']}", token=intruder).status_code == 404
    assert _order(gw, buyer["token"], order["order_id"])["status"] == "PENDING_PAYMENT"

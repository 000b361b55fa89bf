"""Payment end to end through the gateway: a declined card ends the order and the stock returns."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from .conftest import wait_for

CARD_DECLINED = "4000000000000002"
CARD_TIMES_OUT = "4000000000000119"
CARD_OK = "4242424242424242"


def _detail(gw, token, path):
    r = gw.get(path, token=token)
    assert r.status_code == 200, r.text
    return r.json()


def test_declined_payment_fails_the_order_and_gives_the_stock_back(gw, buyer, create_drop):
    token = buyer["token"]
    drop = create_drop(sizes="L:2", limit=1)
    cloth_id, variant_id = drop["cloth_id"], drop["variants"][0]["variant_id"]
    order = gw.post("/orders/add", json={"lines": [{"variant_id": variant_id, "quantity": 1}]}, token=token).json()
    assert gw.post("/payment", json={"order_id": order["order_id"]}, token=token).status_code == 201
    r = gw.put(f"/payment/{order['order_id']}", json={"card_number": CARD_DECLINED}, token=token)
    assert r.status_code == 402 and r.json()["error"]["code"] == "payment_declined"
    wait_for(
        lambda: _detail(gw, token, f"/orders/detail/{order['order_id']}")["status"] == "PAYMENT_FAILED",
        what="order PAYMENT_FAILED",
    )
    wait_for(
        lambda: (
            next(
                v["stock"]
                for v in _detail(gw, token, f"/cloth/detail/{cloth_id}")["variants"]
                if v["variant_id"] == variant_id
            )
            == 2
        ),
        what="stock back after the decline",
    )


def test_timeout_then_retry_charges_once(gw, buyer, create_drop):
    token = buyer["token"]
    drop = create_drop(sizes="L:2", limit=1)
    variant_id = drop["variants"][0]["variant_id"]
    order = gw.post("/orders/add", json={"lines": [{"variant_id": variant_id, "quantity": 1}]}, token=token).json()
    opened = gw.post("/payment", json={"order_id": order["order_id"]}, token=token).json()
    r = gw.put(f"/payment/{order['order_id']}", json={"card_number": CARD_TIMES_OUT}, token=token)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    r = gw.put(f"/payment/{order['order_id']}", json={"card_number": CARD_OK}, token=token)
    assert r.status_code == 200 and r.json()["payment_id"] == opened["payment_id"]
    wait_for(lambda: _detail(gw, token, f"/orders/detail/{order['order_id']}")["status"] == "PAID", what="order PAID")


def test_bad_card_number_names_the_field(gw, buyer):
    r = gw.put("/payment/1", json={"card_number": "42"}, token=buyer["token"])
    assert r.status_code == 400 and "card_number" in r.json()["error"]["fields"]


def test_cancels_racing_payment_completions_never_both_succeed(gw, buyer, create_drop):
    """5 cancels and 5 completions of one order at once: the buyer is told one true answer."""
    token = buyer["token"]
    drop = create_drop(sizes="L:2", limit=1)
    variant_id = drop["variants"][0]["variant_id"]
    order = gw.post("/orders/add", json={"lines": [{"variant_id": variant_id, "quantity": 1}]}, token=token).json()
    order_id = order["order_id"]
    assert gw.post("/payment", json={"order_id": order_id}, token=token).status_code == 201
    start = threading.Barrier(10)
    auth = {"Authorization": f"Bearer {token}"}

    def cancel(_):
        start.wait()
        return "cancel", requests.put(f"{gw.base}/orders/cancel", json={"order_id": order_id}, headers=auth, timeout=15)

    def pay(_):
        start.wait()
        return "pay", requests.put(
            f"{gw.base}/payment/{order_id}", json={"card_number": CARD_OK}, headers=auth, timeout=15
        )

    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(f, i) for i in range(5) for f in (cancel, pay)]
        answers = [f.result() for f in futures]
    codes = {what: sorted(r.status_code for w, r in answers if w == what) for what in ("cancel", "pay")}
    for _, r in answers:
        assert r.status_code in (200, 409), r.text
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "illegal_transition", r.text
    cancelled, paid = 200 in codes["cancel"], 200 in codes["pay"]
    assert cancelled != paid, codes  # one side won, and only one
    final = "CANCELLED" if cancelled else "PAID"
    wait_for(lambda: _detail(gw, token, f"/orders/detail/{order_id}")["status"] == final, what=f"order {final}")

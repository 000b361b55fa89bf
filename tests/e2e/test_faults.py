"""Faults through the gateway: the broker down or wiped, Redis wiped, an order left unpaid.

These stop and start processes of the stack under test (its own broker, its own Redis
database), never the machine's shared servers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from .conftest import STACK, operator, outbox, supervise, wait_for

CARD_OK = "4242424242424242"

pytestmark = pytest.mark.skipif(STACK == "dev", reason="fault tests run only on the throw-away e2e stack")


def _order(gw, token, order_id):
    r = gw.get(f"/orders/detail/{order_id}", token=token)
    assert r.status_code == 200, r.text
    return r.json()


def _buy(gw, token, variant_id):
    r = gw.post("/orders/add", json={"lines": [{"variant_id": variant_id, "quantity": 1}]}, token=token)
    assert r.status_code == 201, r.text
    return r.json()


def _pay(gw, token, order_id):
    assert gw.post("/payment", json={"order_id": order_id}, token=token).status_code == 201
    r = gw.put(f"/payment/{order_id}", json={"card_number": CARD_OK}, token=token)
    assert r.status_code == 200, r.text


def _invariants_hold():
    report = json.loads(operator("inventory", "check_invariants", check=False))
    return report if report.get("ok") else False


def test_broker_down_orders_still_taken_and_everything_delivered_after(gw, buyer, create_drop):
    drop = create_drop(sizes="M:5", limit=5)
    variant_id = drop["variants"][0]["variant_id"]
    token = buyer["token"]
    supervise("stop", "kafka")
    try:
        order = _buy(gw, token, variant_id)  # accepted with the broker down
        _pay(gw, token, order["order_id"])
        assert outbox("payment")["pending"] >= 1  # PaymentCompleted waits in the outbox
        assert _order(gw, token, order["order_id"])["status"] == "PENDING_PAYMENT"
    finally:
        supervise("start", "kafka")
    # the relay retries with backoff; consumers rejoin the fresh broker
    wait_for(lambda: _order(gw, token, order["order_id"])["status"] == "PAID", timeout=90, what="order PAID")
    wait_for(
        lambda: outbox("payment")["pending"] == 0 and outbox("order")["pending"] == 0,
        timeout=60,
        what="outboxes drained",
    )
    # A drained outbox means published, not yet applied: the inventory consumer turns the
    # reservation into a sale when its OrderPaid arrives.
    wait_for(lambda: _stock(variant_id) == {"sold": 1, "reserved": 0}, timeout=60, what="the unit sold in inventory")
    wait_for(_invariants_hold, timeout=30, what="inventory invariants")


def _stock(variant_id: int) -> dict:
    script = (
        "import json; from inventory.models import StockItem; "
        f"print(json.dumps(list(StockItem.objects.filter(variant_id={variant_id}).values('sold', 'reserved'))))"
    )
    return json.loads(operator("inventory", "shell", "-c", script).splitlines()[-1])[0]


def test_broker_that_lost_its_data_is_recovered_without_an_operator(gw, buyer, create_drop):
    drop = create_drop(sizes="M:3", limit=3)
    variant_id = drop["variants"][0]["variant_id"]
    token = buyer["token"]
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).isoformat()
    supervise("stop", "order-consumer")
    try:
        # The order's payment deadline runs from here: the steps below take seconds, not minutes.
        order = _buy(gw, token, variant_id)
        _pay(gw, token, order["order_id"])
        wait_for(lambda: outbox("payment")["pending"] == 0, timeout=30, what="PaymentCompleted published")
        # The broker keeps nothing on disk: a restart loses the event before anyone consumed it.
        supervise("restart", "kafka")
    finally:
        supervise("start", "order-consumer")
    # The payment service's relay finds a broker without its data and publishes again.
    wait_for(lambda: _order(gw, token, order["order_id"])["status"] == "PAID", timeout=60, what="order PAID")
    # An operator's replay on top changes nothing: each event is applied once.
    replayed = json.loads(operator("payment", "replay_events", "--since", since, "--type", "PaymentCompleted"))
    assert replayed["replayed"] >= 1
    wait_for(lambda: _stock(variant_id) == {"sold": 1, "reserved": 0}, timeout=60, what="the unit sold in inventory")
    wait_for(_invariants_hold, timeout=30, what="inventory invariants")
    assert _order(gw, token, order["order_id"])["status"] == "PAID"


def test_redis_wiped_mid_drop_is_rebuilt_without_oversell(gw, join_member, login, create_drop):
    drop = create_drop(sizes="S:4,M:4", limit=1)
    variants = [v["variant_id"] for v in drop["variants"]]
    buyers = [login(join_member())["access_token"] for _ in range(12)]

    def order(i):
        r = gw.post("/orders/add", json={"lines": [{"variant_id": variants[i % 2], "quantity": 1}]}, token=buyers[i])
        return r.status_code

    first = [order(i) for i in range(4)]
    assert first == [201] * 4
    # Lose the stack's Redis database: the gate, caches, token state, queues.
    _wipe_redis()
    # Tokens survive (the member service restores the revocations); the gate is rebuilt.
    with ThreadPoolExecutor(8) as pool:
        rest = list(pool.map(order, range(4, 12)))
    assert rest.count(201) == 4 and rest.count(409) == 4, rest
    report = wait_for(_invariants_hold, timeout=30, what="inventory invariants after the rebuild")
    assert report["ok"] is True


def test_redis_wiped_mid_drop_then_every_order_cancelled_leaves_gate_and_postgresql_agreeing(
    gw, join_member, login, create_drop
):
    drop = create_drop(sizes="M:6", limit=1)
    variant_id = drop["variants"][0]["variant_id"]
    buyers = [login(join_member())["access_token"] for _ in range(14)]

    def order(i):
        r = gw.post("/orders/add", json={"lines": [{"variant_id": variant_id, "quantity": 1}]}, token=buyers[i])
        return (i, r.json()["order_id"]) if r.status_code == 201 else None

    def wipe_midway(i):
        if i == 3:
            redis.Redis.from_url(os.environ.get("E2E_REDIS_URL", "redis://127.0.0.1:6379/1")).flushdb()
        return order(i)

    with ThreadPoolExecutor(8) as pool:
        won = [w for w in pool.map(wipe_midway, range(14)) if w]
    assert len(won) == 6
    for i, order_id in won:
        r = gw.put("/orders/cancel", json={"order_id": order_id}, token=buyers[i])
        assert r.status_code == 200, r.text
    # No operator command: the releases, and the gate's own repair, bring every unit back.
    wait_for(lambda: _stock(variant_id) == {"sold": 0, "reserved": 0}, timeout=60, what="every unit released")
    wait_for(_invariants_hold, timeout=90, interval=2.0, what="gate and PostgreSQL agreeing")
    # and all six units sell again
    again = [login(join_member())["access_token"] for _ in range(6)]
    codes = [
        gw.post("/orders/add", json={"lines": [{"variant_id": variant_id, "quantity": 1}]}, token=t).status_code
        for t in again
    ]
    assert codes == [201] * 6, codes


def _wipe_redis():
    """Lose the stack's Redis database (only that one: FLUSHDB, never the whole server)."""
    redis.Redis.from_url(os.environ.get("E2E_REDIS_URL", "redis://127.0.0.1:6379/1")).flushdb()


def test_a_logout_survives_a_redis_wipe(gw, join_member, login):
    member = join_member()
    phone, laptop = login(member, "phone"), login(member, "laptop")
    assert gw.delete("/member/logout", token=phone["access_token"]).status_code == 204
    _wipe_redis()
    r = gw.get("/member/mypage", token=phone["access_token"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid", r.text
    # Restored from PostgreSQL, not merely refused: the other device goes on.
    assert gw.get("/member/mypage", token=laptop["access_token"]).status_code == 200
    assert gw.get("/member/refresh", headers={"Refresh-Token": phone["refresh_token"]}).status_code == 401


def test_a_logout_everywhere_survives_a_redis_wipe(gw, join_member, login):
    member = join_member()
    phone, laptop = login(member, "phone"), login(member, "laptop")
    assert gw.delete("/member/logout/all", token=phone["access_token"]).status_code == 204
    _wipe_redis()
    for device in (phone, laptop):
        assert gw.get("/member/mypage", token=device["access_token"]).status_code == 401
    assert gw.get("/member/mypage", token=login(member, "tablet")["access_token"]).status_code == 200


def test_after_a_cancel_the_member_may_order_again_at_once(gw, buyer, create_drop):
    # The limit is 1: the cancelled unit must be free when the cancel answers. With the
    # inventory's consumer stopped, OrderCancelled cannot be what frees it.
    drop = create_drop(sizes="M:5", limit=1)
    variant_id = drop["variants"][0]["variant_id"]
    token = buyer["token"]
    supervise("stop", "inventory-consumer")
    try:
        order = _buy(gw, token, variant_id)
        r = gw.put("/orders/cancel", json={"order_id": order["order_id"]}, token=token)
        assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
        _buy(gw, token, variant_id)
    finally:
        supervise("start", "inventory-consumer")
    wait_for(lambda: outbox("order")["pending"] == 0, timeout=30, what="OrderCancelled published")
    wait_for(_invariants_hold, timeout=30, what="inventory invariants")


def test_a_paid_order_cannot_be_cancelled_before_the_payment_reaches_it(gw, buyer, create_drop):
    # The order service has not yet consumed PaymentCompleted (its consumer is stopped), so
    # the order still reads PENDING_PAYMENT: the payment's hold is what refuses the cancel.
    drop = create_drop(sizes="M:2", limit=1)
    variant_id = drop["variants"][0]["variant_id"]
    token = buyer["token"]
    supervise("stop", "order-consumer")
    try:
        order = _buy(gw, token, variant_id)
        _pay(gw, token, order["order_id"])
        r = gw.put("/orders/cancel", json={"order_id": order["order_id"]}, token=token)
        assert r.status_code == 409 and r.json()["error"]["code"] == "illegal_transition", r.text
        assert _order(gw, token, order["order_id"])["status"] == "PENDING_PAYMENT"
    finally:
        supervise("start", "order-consumer")
    wait_for(lambda: _order(gw, token, order["order_id"])["status"] == "PAID", timeout=90, what="order PAID")


def test_unpaid_order_expires_and_its_stock_returns(gw, buyer, create_drop):
    # The e2e stack runs with ORDER_PAYMENT_DEADLINE_SECONDS=20.
    drop = create_drop(sizes="M:1", limit=1)
    variant_id = drop["variants"][0]["variant_id"]
    order = _buy(gw, buyer["token"], variant_id)
    assert dt.datetime.fromisoformat(order["payment_deadline"]) > dt.datetime.now(dt.UTC)
    wait_for(
        lambda: _order(gw, buyer["token"], order["order_id"])["status"] == "EXPIRED", timeout=60, what="order EXPIRED"
    )
    r = gw.post("/payment", json={"order_id": order["order_id"]}, token=buyer["token"])
    assert r.status_code == 409, r.text  # too late to pay
    # the unit is back on sale
    wait_for(
        lambda: gw.get(f"/cloth/detail/{drop['cloth_id']}").json()["variants"][0]["stock"] == 1,
        timeout=30,
        what="stock back",
    )


def _stack(command: str) -> None:
    """`python manage_all.py down` / `up` on the stack under test, as an operator runs them."""
    import subprocess
    import sys

    from .conftest import ROOT

    result = subprocess.run(
        [sys.executable, str(ROOT / "manage_all.py"), "--stack", STACK, command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"


def _payments(order_ids: list[int]) -> dict[int, str]:
    script = (
        "import json; from payments.models import Payment; print(json.dumps({p.order_id: p.status for p in "
        f"Payment.objects.filter(order_id__in={order_ids!r}, status__in=['COMPLETED', 'REFUNDED'])}}))"
    )
    return {int(k): v for k, v in json.loads(operator("payment", "shell", "-c", script).splitlines()[-1]).items()}


def _settled(gw, charged: dict[int, str]) -> dict[int, str] | bool:
    """Every charged order PAID (money kept, unit sold) or its payment refunded; else False."""
    payments = _payments(list(charged))
    outcome = {}
    for order_id, token in charged.items():
        status = _order(gw, token, order_id)["status"]
        if status == "PAID" and payments.get(order_id) == "COMPLETED":
            outcome[order_id] = "PAID"
        elif payments.get(order_id) == "REFUNDED" and status != "PAID":
            outcome[order_id] = "REFUNDED"
        else:
            return False
    return outcome


def test_stack_restarted_during_payments_charges_nobody_for_nothing(gw, join_member, login, create_drop):
    import threading
    import time

    import requests

    drop = create_drop(sizes="M:20", limit=20)
    variant_id = drop["variants"][0]["variant_id"]
    token = login(join_member())["access_token"]
    charged: dict[int, str] = {}  # order id -> token, for every payment the API answered COMPLETED

    # Payments whose PaymentCompleted the broker acknowledged but nobody consumed yet.
    supervise("stop", "order-consumer")
    for _ in range(3):
        order = _buy(gw, token, variant_id)
        _pay(gw, token, order["order_id"])
        charged[order["order_id"]] = token
    wait_for(lambda: outbox("payment")["pending"] == 0, timeout=30, what="PaymentCompleted published")

    # More buyers keep ordering and paying while the whole stack stops and starts.
    stop = threading.Event()

    def keep_buying() -> None:
        while not stop.is_set():
            try:
                r = gw.post("/orders/add", json={"lines": [{"variant_id": variant_id, "quantity": 1}]}, token=token)
                if r.status_code == 201:
                    order_id = r.json()["order_id"]
                    if gw.post("/payment", json={"order_id": order_id}, token=token).status_code == 201:
                        paid = gw.put(f"/payment/{order_id}", json={"card_number": CARD_OK}, token=token)
                        if paid.status_code == 200 and paid.json()["status"] == "COMPLETED":
                            charged[order_id] = token
            except requests.RequestException:
                pass  # the stack is down: a buyer's click that got no answer
            time.sleep(0.05)

    buyer_thread = threading.Thread(target=keep_buying, daemon=True)
    buyer_thread.start()
    try:
        time.sleep(1.0)
        _stack("down")
        _stack("up")
        # `up` returns once every consumer holds its partitions: nothing waits on a group join
        for service in ("catalog", "order", "inventory", "payment"):
            health = requests.get(os.environ[f"{service.upper()}_SERVICE_URL"] + "/health", timeout=5).json()
            assert health["checks"]["consumer"] == "ok", health
        time.sleep(1.0)
    finally:
        stop.set()
        buyer_thread.join(timeout=30)

    outcome = wait_for(lambda: _settled(gw, charged), timeout=120, interval=1.0, what="every charge PAID or refunded")
    assert len(outcome) >= 3
    paid = sum(1 for status in outcome.values() if status == "PAID")
    wait_for(lambda: _stock(variant_id)["sold"] == paid, timeout=60, what="one unit sold per paid order")
    wait_for(_invariants_hold, timeout=60, what="inventory invariants")


def test_reconciliation_repairs_what_a_lost_event_left_apart(gw, join_member, login, create_drop):
    """Events lost with nobody left to publish them again: the saga's reconciliation finds and repairs."""
    drop = create_drop(sizes="M:5", limit=5)
    variant_id = drop["variants"][0]["variant_id"]
    token = login(join_member())["access_token"]
    relays = ["payment-worker", "order-worker"]
    try:
        # B: paid, but inventory never hears OrderPaid. Inventory's worker stops too: its
        # expiry sweep would release B's reservation once its deadline and grace are over
        # (24 s on this stack), and on a slow machine the steps below take longer than that.
        supervise("stop", "inventory-consumer", "inventory-worker")
        unsold = _buy(gw, token, variant_id)
        _pay(gw, token, unsold["order_id"])
        wait_for(lambda: _order(gw, token, unsold["order_id"])["status"] == "PAID", timeout=60, what="order B PAID")
        wait_for(lambda: outbox("order")["pending"] == 0, timeout=30, what="OrderPaid published")
        # A: charged, but the order never hears PaymentCompleted.
        supervise("stop", "order-consumer")
        unpaid = _buy(gw, token, variant_id)
        _pay(gw, token, unpaid["order_id"])
        wait_for(lambda: outbox("payment")["pending"] == 0, timeout=30, what="PaymentCompleted published")
        # Both events are lost with the broker's data, and no relay runs to publish them again.
        supervise("stop", *relays)
        supervise("restart", "kafka")
        supervise("start", "order-consumer", "inventory-consumer")
        # the consumers have rejoined the empty broker: nothing arrives by itself
        import time

        time.sleep(10)
        assert _order(gw, token, unpaid["order_id"])["status"] == "PENDING_PAYMENT"
        assert _stock(variant_id)["sold"] == 0

        report = json.loads(operator("order", "reconcile_saga", "--grace", "0").splitlines()[-1])
        problems = {r["order_id"]: r for r in report["repaired"]}
        assert problems[unpaid["order_id"]]["problem"] == "charged, order PENDING_PAYMENT"
        assert problems[unsold["order_id"]]["problem"] == "order PAID, reservation ACTIVE"

        wait_for(lambda: _order(gw, token, unpaid["order_id"])["status"] == "PAID", timeout=60, what="order A PAID")
        wait_for(lambda: _stock(variant_id) == {"sold": 1, "reserved": 1}, timeout=60, what="order B's unit sold")
    finally:
        supervise("start", "order-consumer", "inventory-consumer", "inventory-worker", *relays)
    # A's OrderPaid leaves with the order service's relay, as always
    wait_for(lambda: _stock(variant_id) == {"sold": 2, "reserved": 0}, timeout=60, what="both units sold")
    # once agreed, nothing is left to repair
    report = json.loads(operator("order", "reconcile_saga", "--grace", "0").splitlines()[-1])
    assert [r for r in report["repaired"] if r["order_id"] in (unpaid["order_id"], unsold["order_id"])] == []
    wait_for(_invariants_hold, timeout=60, what="inventory invariants")

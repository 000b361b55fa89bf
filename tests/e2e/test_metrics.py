"""/metrics of a running stack: every service on its own port, the domain's figures moving with a drop."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests
from prometheus_client.parser import text_string_to_metric_families

from .conftest import GATEWAY_URL, wait_for

SERVICES = ("member", "catalog", "order", "inventory", "payment")


def _service_url(service: str) -> str:
    default = urlsplit(GATEWAY_URL)
    port = (default.port or 80) + ("gateway", *SERVICES).index(service)
    return os.environ.get(f"{service.upper()}_SERVICE_URL", f"{default.scheme}://{default.hostname}:{port}")


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    r = requests.get(url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_every_service_answers_metrics_on_its_own_port_and_the_gateway_not_on_its_public_one(gw):
    for service in SERVICES:
        samples = scrape(_service_url(service))
        assert value(samples, "shop_outbox_waiting_rows", service=service) >= 0
        assert any(name == "shop_http_request_duration_seconds_count" for name, _ in samples)
    assert gw.get("/metrics").status_code == 404
    gateway = urlsplit(GATEWAY_URL)
    samples = scrape(f"{gateway.scheme}://{gateway.hostname}:{gateway.port + 9}")
    assert any(name == "shop_http_request_duration_seconds_count" for name, _ in samples)


def test_an_order_moves_the_domain_metrics(gw, buyer, create_drop):
    drop = create_drop(sizes="M:5", limit=1)
    variant = str(drop["variants"][0]["variant_id"])
    order_url, inventory_url = _service_url("order"), _service_url("inventory")
    before = scrape(order_url)

    r = gw.post("/orders/add", json={"lines": [{"variant_id": int(variant), "quantity": 1}]}, token=buyer["token"])
    assert r.status_code == 201, r.text
    r = gw.post("/orders/add", json={"lines": [{"variant_id": int(variant), "quantity": 1}]}, token=buyer["token"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "limit_exceeded"

    after = scrape(order_url)
    assert value(after, "shop_orders_total", outcome="won") - value(before, "shop_orders_total", outcome="won") == 1
    assert (
        value(after, "shop_orders_total", outcome="limit_exceeded")
        - value(before, "shop_orders_total", outcome="limit_exceeded")
        == 1
    )
    stock = scrape(inventory_url)
    gate = {k: v for k, v in stock.items() if k[0] == "shop_gate_available_units" and ("variant_id", variant) in k[1]}
    assert list(gate.values()) == [4.0]
    assert ("size", "M") in next(iter(gate))[1]
    # The inventory's consumer reports its lag per topic it reads.
    wait_for(
        lambda: any(name == "shop_consumer_lag_messages" for name, _ in scrape(inventory_url)),
        what="the inventory consumer's lag",
    )


def test_watch_shows_a_drop_from_the_metrics(gw, create_drop):
    import subprocess
    import sys

    from .conftest import ROOT, STACK

    drop = create_drop(sizes="S:3,XL:2", name="Watched Parka")
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage_all.py"), "--stack", STACK, "watch", str(drop["cloth_id"]), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("Watched Parka")]
    assert [row.split()[3] for row in rows] == ["S", "XL"], result.stdout
    assert "placements/s" in result.stdout and "consumer lag" in result.stdout


def test_the_gateway_repeats_a_remembered_sold_out_and_counts_it(gw, buyer, join_member, login, create_drop):
    drop = create_drop(sizes="M:1", limit=1)
    body = {"lines": [{"variant_id": drop["variants"][0]["variant_id"], "quantity": 1}]}
    late = [login(join_member())["access_token"] for _ in range(6)]  # one click each: the order limit is per member
    gateway = urlsplit(GATEWAY_URL)
    gateway_metrics = f"{gateway.scheme}://{gateway.hostname}:{gateway.port + 9}"
    order_before, gateway_before = scrape(_service_url("order")), scrape(gateway_metrics)

    assert gw.post("/orders/add", json=body, token=buyer["token"]).status_code == 201
    for token in late:
        r = gw.post("/orders/add", json=body, token=token)
        assert r.status_code == 409 and r.json()["error"]["code"] == "sold_out", r.text
        assert "X-Same-Answer-For" not in r.headers  # the service's word to the gateway stays inside

    order_after, gateway_after = scrape(_service_url("order")), scrape(gateway_metrics)
    by_order = value(order_after, "shop_orders_total", outcome="sold_out") - value(
        order_before, "shop_orders_total", outcome="sold_out"
    )
    repeated = {"upstream": "order", "code": "sold_out"}
    by_gateway = value(gateway_after, "shop_repeated_answers_total", **repeated) - value(
        gateway_before, "shop_repeated_answers_total", **repeated
    )
    assert by_order + by_gateway == len(late)
    # the first late click finds the gate's answer, the next the order service's memory of
    # it; once a gateway process holds that, it answers the same click itself
    assert by_gateway >= 1 and by_order >= 2


def test_the_gateway_repeats_a_cached_read_until_the_stock_changes(gw, buyer, create_drop):
    drop = create_drop(sizes="M:3", limit=1)
    cloth_id, variant_id = drop["cloth_id"], drop["variants"][0]["variant_id"]
    gateway = urlsplit(GATEWAY_URL)
    gateway_metrics = f"{gateway.scheme}://{gateway.hostname}:{gateway.port + 9}"

    def shown_stock() -> int:
        r = gw.get(f"/cloth/detail/{cloth_id}")
        assert r.status_code == 200, r.text
        assert "X-Same-Answer-While" not in r.headers  # the catalog's word to the gateway stays inside
        return r.json()["variants"][0]["stock"]

    repeated = {"upstream": "catalog", "code": "ok"}
    before = value(scrape(gateway_metrics), "shop_repeated_answers_total", **repeated)
    assert [shown_stock() for _ in range(6)] == [3] * 6
    assert value(scrape(gateway_metrics), "shop_repeated_answers_total", **repeated) > before

    body = {"lines": [{"variant_id": variant_id, "quantity": 1}]}
    assert gw.post("/orders/add", json=body, token=buyer["token"]).status_code == 201
    wait_for(lambda: shown_stock() == 2, what="the reserved unit off the shown stock, through the gateway")

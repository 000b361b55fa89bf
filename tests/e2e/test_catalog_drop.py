"""A drop end to end: created from the shell, shown through the gateway, never oversold, checked."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from .conftest import operator, wait_for


def test_a_drop_from_the_shell_shows_in_list_and_detail(gw, create_drop):
    drop = create_drop(sizes="S:3,M:2", limit=1, name="E2E Jacket")
    r = gw.get("/cloth/list?sort=newest&page_size=50")
    assert r.status_code == 200, r.text
    item = next(c for c in r.json()["results"] if c["cloth_id"] == drop["cloth_id"])
    assert item["name"] == "E2E Jacket" and item["on_sale"] is True and item["in_stock"] is True
    r = gw.get(f"/cloth/detail/{drop['cloth_id']}")
    assert r.status_code == 200, r.text
    assert [(v["size"], v["stock"]) for v in r.json()["variants"]] == [("S", 3), ("M", 2)]
    assert r.json()["purchase_limit"] == 1
    assert gw.get("/cloth/detail/987654321").status_code == 404
    assert gw.get("/cloth/list?sort=cheapest").json()["error"]["fields"].keys() == {"sort"}


def test_internal_catalog_and_stock_routes_are_not_reachable_from_outside(gw):
    assert gw.post("/cloth/details", json={"variant_ids": [1]}).status_code == 404
    assert gw.post("/cloth/inventory", json={"variant_ids": [1]}).status_code == 404
    assert gw.put("/cloth/inventory", json={"order_id": 1}).status_code == 404
    assert gw.post("/internal/reservations", json={}).status_code == 404


def test_concurrent_orders_never_oversell_and_the_invariants_hold(gw, buyer, create_drop):
    drop = create_drop(sizes="M:3", limit=0)
    variant_id = drop["variants"][0]["variant_id"]

    def order(_):
        return gw.post(
            "/orders/add", json={"lines": [{"variant_id": variant_id, "quantity": 1}]}, token=buyer["token"]
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(order, range(12)))
    assert codes.count(201) == 3 and codes.count(409) == 9, codes
    wait_for(
        lambda: gw.get(f"/cloth/detail/{drop['cloth_id']}").json()["variants"][0]["stock"] == 0, what="shown stock 0"
    )
    report = json.loads(operator("inventory", "check_invariants"))
    assert report["ok"] is True, report
    operator("inventory", "rebuild_stock", "--cloth", str(drop["cloth_id"]))
    assert json.loads(operator("inventory", "check_invariants"))["ok"] is True


def test_page_links_point_at_the_gateway(gw, create_drop):
    create_drop(sizes="M:1")
    create_drop(sizes="M:1")
    page = gw.get("/cloth/list?page_size=1").json()
    assert page["next"].startswith(gw.base + "/cloth/list?"), page["next"]
    assert gw.get(page["next"][len(gw.base) :]).status_code == 200

"""The internal HTTP API: shapes and codes the order service relies on."""

from __future__ import annotations

from inventory.tests.conftest import counts


def test_reserve_answers_201_then_the_same_on_retry(cloth, internal_client):
    cloth(1, {11: 5})
    body = {
        "order_id": 100,
        "member_id": 7,
        "lines": [{"variant_id": 11, "quantity": 2}],
        "deadline": "2099-01-01T00:00:00Z",
    }
    first = internal_client.post("/internal/reservations", body, format="json")
    again = internal_client.post("/internal/reservations", body, format="json")
    assert first.status_code == again.status_code == 201
    assert first.json()["status"] == "RESERVED"
    assert first.json()["lines"] == [{"variant_id": 11, "cloth_id": 1, "quantity": 2}]
    assert counts(11) == (3, 2, 0)


def test_sold_out_is_409_naming_the_variant(cloth, internal_client):
    cloth(1, {11: 1})
    r = internal_client.post(
        "/internal/reservations",
        {"order_id": 1, "member_id": 7, "lines": [{"variant_id": 11, "quantity": 2}]},
        format="json",
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "sold_out" and r.json()["error"]["variant_id"] == 11


def test_bad_input_is_400_naming_the_field(cloth, internal_client):
    cloth(1, {11: 1})
    r = internal_client.post(
        "/internal/reservations",
        {"order_id": 1, "member_id": 7, "lines": [{"variant_id": 11, "quantity": 0}]},
        format="json",
    )
    assert r.status_code == 400 and "lines.0.quantity" in r.json()["error"]["fields"]
    r = internal_client.post(
        "/internal/reservations",
        {"order_id": 1, "member_id": 7, "lines": [{"variant_id": 99, "quantity": 1}]},
        format="json",
    )
    assert r.status_code == 400 and "lines.0.variant_id" in r.json()["error"]["fields"]
    r = internal_client.post("/internal/stock", {"cloth_id": "x", "variants": []}, format="json")
    fields = r.json()["error"]["fields"]
    assert r.status_code == 400 and "cloth_id" in fields and any(f.startswith("variants") for f in fields)


def test_outsiders_get_404_on_every_internal_route(cloth, anon_client):
    cloth(1, {11: 1})
    assert anon_client.post("/internal/reservations", {}, format="json").status_code == 404
    assert anon_client.post("/internal/reservations/1/release", {}, format="json").status_code == 404
    assert anon_client.post("/cloth/inventory", {"variant_ids": [11]}, format="json").status_code == 404
    assert anon_client.put("/cloth/inventory", {"order_id": 1}, format="json").status_code == 404
    assert anon_client.post("/internal/stock", {}, format="json").status_code == 404
    assert anon_client.post("/internal/reservations/lookup", {}, format="json").status_code == 404
    assert anon_client.post("/internal/events/replay", {}, format="json").status_code == 404


def test_release_and_sell_endpoints(cloth, internal_client):
    cloth(1, {11: 5})
    for order_id in (100, 101):
        internal_client.post(
            "/internal/reservations",
            {"order_id": order_id, "member_id": 7, "lines": [{"variant_id": 11, "quantity": 1}]},
            format="json",
        )
    r = internal_client.post("/internal/reservations/100/release", {"reason": "cancelled"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "RELEASED"
    r = internal_client.put("/cloth/inventory", {"order_id": 101}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "SOLD"
    assert internal_client.put("/cloth/inventory", {"order_id": 999}, format="json").status_code == 404
    assert counts(11) == (4, 0, 1)


def test_stock_reads_from_cache_or_postgresql(cloth, internal_client, settings):
    cloth(1, {11: 5, 12: 2})
    for from_cache in (True, False):
        settings.STOCK_READS_FROM_CACHE = from_cache
        r = internal_client.post("/cloth/inventory", {"variant_ids": [12, 11, 404]}, format="json")
        assert r.status_code == 200
        assert r.json()["items"] == [
            {"variant_id": 12, "cloth_id": 1, "total": 2, "available": 2, "reserved": 0, "sold": 0},
            {"variant_id": 11, "cloth_id": 1, "total": 5, "available": 5, "reserved": 0, "sold": 0},
        ]


def test_a_stock_cache_outage_costs_a_postgresql_read(cloth, internal_client, settings, cache_outage):
    from inventory import selectors

    cloth(1, {11: 5})
    settings.STOCK_READS_FROM_CACHE = True
    for _ in range(2):
        r = internal_client.post("/cloth/inventory", {"variant_ids": [11]}, format="json")
        assert r.status_code == 200
        assert r.json()["items"] == [
            {"variant_id": 11, "cloth_id": 1, "total": 5, "available": 5, "reserved": 0, "sold": 0}
        ]
    selectors.invalidate_stock_cache([11])  # entries expire by themselves: nothing to do


def test_register_stock_endpoint_loads_the_gate(transactional_db, internal_client):
    from inventory import gate

    body = {"cloth_id": 5, "sale_starts_at": None, "purchase_limit": 1, "variants": [{"variant_id": 51, "stock": 3}]}
    assert internal_client.post("/internal/stock", body, format="json").status_code == 200
    assert internal_client.post("/internal/stock", body, format="json").status_code == 200
    assert gate.snapshot(5)["avail"] == {51: 3}
    assert counts(51) == (3, 0, 0)


def test_reservation_lookup_gives_states_by_order_and_the_active_ones_in_a_window(cloth, internal_client):
    import datetime as dt

    from django.utils import timezone

    cloth(1, {11: 5})
    for order_id in (200, 201):
        internal_client.post(
            "/internal/reservations",
            {"order_id": order_id, "member_id": 7, "lines": [{"variant_id": 11, "quantity": 1}]},
            format="json",
        )
    internal_client.post("/internal/reservations/200/release", {"reason": "cancelled"}, format="json")
    now = timezone.now()
    r = internal_client.post(
        "/internal/reservations/lookup",
        {
            "order_ids": [200, 201, 999],
            "active_since": (now - dt.timedelta(minutes=1)).isoformat(),
            "active_until": (now + dt.timedelta(minutes=1)).isoformat(),
        },
        format="json",
    )
    assert r.status_code == 200
    states = {x["order_id"]: x["state"] for x in r.json()["reservations"]}
    assert states == {200: "RELEASED", 201: "ACTIVE"}
    assert [x["order_id"] for x in r.json()["active"]] == [201]
    # a window in the past holds none; half a window is refused, naming the field
    r = internal_client.post(
        "/internal/reservations/lookup",
        {"active_since": "2020-01-01T00:00:00Z", "active_until": "2020-01-02T00:00:00Z"},
        format="json",
    )
    assert r.json() == {"reservations": [], "active": []}
    r = internal_client.post("/internal/reservations/lookup", {"active_since": now.isoformat()}, format="json")
    assert r.status_code == 400 and "active_until" in r.json()["error"]["fields"]

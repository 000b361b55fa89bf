"""The gateway's own endpoints: health of every service, the public API's schema and docs page."""

from __future__ import annotations


def test_health_is_ok_when_every_service_is(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["services"] == {s: "ok" for s in ("member", "catalog", "order", "inventory", "payment")}


def test_health_is_503_naming_the_service_that_is_down(client, settings, dead_url):
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "payment": dead_url}
    r = client.get("/health")
    assert r.status_code == 503
    assert r.json()["services"]["payment"] == "down" and r.json()["down"] == ["payment"]
    assert r.json()["services"]["member"] == "ok"


def test_the_schema_keeps_only_public_routes_and_marks_those_needing_a_token(client):
    doc = client.get("/api/schema").json()
    assert set(doc["paths"]) == {"/member/join", "/member/mypage", "/cloth/detail/{cloth_id}"}
    assert doc["paths"]["/member/join"]["post"]["security"] == []
    assert doc["paths"]["/member/mypage"]["get"]["security"] == [{"bearerAuth": []}]
    assert "Join" in doc["components"]["schemas"]


def test_the_schema_leaves_out_a_service_that_is_down(client, settings, dead_url):
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "catalog": dead_url}
    doc = client.get("/api/schema").json()
    assert "/cloth/detail/{cloth_id}" not in doc["paths"] and "/member/join" in doc["paths"]


def test_the_docs_page_lists_the_public_operations_and_no_internal_one(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
    page = r.content.decode()
    assert "/member/join" in page and "<code>email</code>*" in page
    assert "/cloth/inventory" not in page and "/internal/" not in page

"""The gateway's own endpoints: health of every service, the public API's schema and docs page."""

from __future__ import annotations

from gateway import apidocs


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


def test_the_docs_page_is_swagger_ui_over_the_schema_with_its_files_served_here(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
    page = r.content.decode()
    assert 'url: "/api/schema"' in page
    for name in ("swagger-ui.css", "swagger-ui-bundle.js"):
        assert f'"/docs/assets/{name}"' in page
        asset = client.get(f"/docs/assets/{name}")
        assert asset.status_code == 200 and len(asset.content) > 10_000
    assert client.get("/docs/assets/swagger-ui-bundle.js")["Content-Type"].startswith("application/javascript")
    assert "http" not in page  # no CDN: every file comes from this gateway


def test_only_swagger_uis_own_files_are_served_from_the_docs_assets(client):
    for name in ("LICENSE", "..", "swagger-ui-bundle.js.map", "settings.py"):
        r = client.get(f"/docs/assets/{name}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def _enum_part(method: str, path: str, values: list[str]) -> dict:
    status = {"type": "object", "properties": {"status": {"$ref": "#/components/schemas/StatusEnum"}}}
    answer = {"content": {"application/json": {"schema": status}}}
    return {
        "paths": {path: {method: {"responses": {"200": answer}}}},
        "components": {"schemas": {"StatusEnum": {"type": "string", "enum": values}}},
    }


def test_a_component_two_services_name_alike_is_kept_for_each_under_its_own_name(monkeypatch):
    parts = {
        "order": _enum_part("get", "/orders/detail/{order_id}", ["PENDING_PAYMENT", "PAID"]),
        "payment": _enum_part("put", "/payment/{order_id}", ["PENDING", "COMPLETED"]),
    }
    monkeypatch.setattr(apidocs, "_fetch", lambda service: parts.get(service, {"paths": {}}))
    doc, _ = apidocs.build_schema()
    schemas = doc["components"]["schemas"]

    def enum_of(path: str) -> list[str]:
        (operation,) = doc["paths"][path].values()
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["status"]["$ref"]
        return schemas[ref.rsplit("/", 1)[-1]]["enum"]

    assert enum_of("/orders/detail/{order_id}") == ["PENDING_PAYMENT", "PAID"]
    assert enum_of("/payment/{order_id}") == ["PENDING", "COMPLETED"]


def test_the_gateways_own_error_answers_are_documented_on_every_operation_in_the_error_shape(client):
    doc = client.get("/api/schema").json()
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]

    def errors(method: str, path: str) -> set[int]:
        responses = doc["paths"][path][method]["responses"]
        for status, answer in responses.items():
            if int(status) >= 400:
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        return {int(status) for status in responses if int(status) >= 400}

    everywhere = {400, 414, 431, 503, 504}
    # public: no 401 from the gateway, but its per-address limit (429)
    assert errors("post", "/member/join") == everywhere | {413, 429}
    assert errors("get", "/member/mypage") == everywhere | {401}  # a token needed; no body read; no limit
    assert errors("get", "/cloth/detail/{cloth_id}") == everywhere | {429}
    assert doc["paths"]["/cloth/detail/{cloth_id}"]["get"]["responses"]["503"]["headers"]["Retry-After"]


def test_metrics_answer_only_on_the_metrics_port_never_on_the_public_one(client, settings):
    settings.GATEWAY_METRICS_PORT = 18109
    client.get("/no/such/route")
    r = client.get("/metrics")  # the test client's port: the public one
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/metrics", SERVER_PORT="18109")
    assert r.status_code == 200
    assert 'shop_http_request_duration_seconds_count{method="GET",status="404",view="unrouted"}' in r.content.decode()
    settings.GATEWAY_METRICS_PORT = 0
    assert client.get("/metrics", SERVER_PORT="18109").status_code == 404


def test_the_gateway_has_no_database_and_skips_djangos_per_request_database_work():
    from django.core import signals
    from django.db import close_old_connections, connections, reset_queries

    from gateway import apps

    assert {db["ENGINE"] for db in connections.settings.values()} == {"django.db.backends.dummy"}
    # what the app does when it loads (Django's test client connects close_old_connections
    # again after each request it makes, so it is done here once more)
    apps._without_database_signals()
    receivers = [
        receiver
        for signal in (signals.request_started, signals.request_finished)
        for receiver in signal._live_receivers(None)[0]
    ]
    try:
        assert close_old_connections not in receivers and reset_queries not in receivers
    finally:  # the test client expects its own housekeeping back
        signals.request_started.connect(reset_queries)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)

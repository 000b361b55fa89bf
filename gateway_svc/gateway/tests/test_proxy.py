"""The gateway's hot path: allowlist, tokens at the edge, identity headers, upstream failures."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from django.conf import settings

from shared import tokens


@pytest.fixture
def token():
    access, _ = tokens.issue_access_token(member_id=7, session_id="sid-7")
    return access


def seen(response) -> dict:
    """What the upstream received (the echo server's answer)."""
    assert response.status_code == 200, response.content
    return response.json()


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_public_route_passes_without_a_token_with_body_and_query(client):
    r = client.post("/member/join?x=1", data=json.dumps({"email": "a@b.c"}), content_type="application/json")
    got = seen(r)
    assert (got["method"], got["path"], got["query"]) == ("POST", "/member/join", "x=1")
    assert json.loads(got["body"]) == {"email": "a@b.c"}
    assert got["headers"]["x-internal-token"] == settings.INTERNAL_API_SECRET
    assert "x-member-id" not in got["headers"]


def test_a_token_route_forwards_the_members_identity_from_the_token(client, token):
    got = seen(client.get("/orders/list/7", **bearer(token)))
    assert got["headers"]["x-member-id"] == "7" and got["headers"]["x-session-id"] == "sid-7"


def test_identity_headers_a_client_sends_never_reach_a_service(client, token):
    forged = {
        "HTTP_X_MEMBER_ID": "999",
        "HTTP_X_SESSION_ID": "stolen",
        "HTTP_X_INTERNAL_TOKEN": "guess",
        "HTTP_X_FORWARDED_FOR": "6.6.6.6",
        "HTTP_X_CALLER": "order",
        "HTTP_COOKIE": "a=b",
    }
    public = seen(client.post("/member/login", data="{}", content_type="application/json", **forged))["headers"]
    assert "x-member-id" not in public and "x-session-id" not in public and "cookie" not in public
    assert public["x-internal-token"] == settings.INTERNAL_API_SECRET
    assert public["x-forwarded-for"] == "127.0.0.1"  # REMOTE_ADDR, not the client's claim
    assert public["x-caller"] == "gateway"
    private = seen(client.get("/member/mypage", **forged, **bearer(token)))["headers"]
    assert (private["x-member-id"], private["x-session-id"]) == ("7", "sid-7")
    assert "authorization" not in private


def test_headers_services_need_are_forwarded(client):
    got = seen(client.get("/member/refresh", HTTP_REFRESH_TOKEN="r-1", HTTP_USER_AGENT="Firefox"))["headers"]
    assert got["refresh-token"] == "r-1" and got["user-agent"] == "Firefox"


def test_only_safe_upstream_headers_come_back(client):
    r = client.get("/cloth/list")
    assert r["Retry-After"] == "7" and r["Content-Type"] == "application/json"
    assert "Set-Cookie" not in r and "X-Upstream-Internal" not in r


def test_the_upstreams_status_and_body_come_back(client, settings):
    r = client.get("/cloth/list", HTTP_X_WANT_STATUS="409")
    assert r.status_code == 200  # X-Want-Status is not a forwarded header: the client cannot steer it
    settings.GATEWAY_FORWARD_HEADERS = [*settings.GATEWAY_FORWARD_HEADERS, "X-Want-Status"]
    r = client.get("/cloth/list", HTTP_X_WANT_STATUS="409")
    assert r.status_code == 409 and r.json()["path"] == "/cloth/list"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/cloth/inventory"),
        ("put", "/cloth/inventory"),
        ("post", "/cloth/details"),
        ("post", "/internal/reservations"),
        ("get", "/internal/orders/1"),
        ("get", "/admin/"),
        ("get", "/member/admin"),
        ("get", "/member/mypage/"),
        ("get", "/cloth/detail/abc"),
        ("get", "/orders/list/1/../../internal/orders/1"),
        ("get", "//member/mypage"),
        ("get", "/nothing"),
        ("post", "/internal/stock"),
    ],
)
def test_anything_outside_the_allowlist_is_a_json_404(client, token, method, path):
    r = getattr(client, method)(path, **bearer(token))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_a_known_path_with_another_method_is_405(client):
    r = client.delete("/member/join")
    assert r.status_code == 405 and r["Allow"] == "POST"


def test_a_token_route_without_a_token_is_401_not_authenticated(client):
    for headers in ({}, {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}, {"HTTP_AUTHORIZATION": "Bearer "}):
        r = client.get("/member/mypage", **headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
        assert r["WWW-Authenticate"].startswith("Bearer")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(good: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "7", "sid": "sid-7", "iat": now, "exp": now + 300, "type": "access"}
    header, payload, sig = good.split(".")
    forged_payload = _b64({**claims, "sub": "8"})
    return {
        "expired": tokens.issue_access_token(member_id=7, session_id="sid-7", now=time.time() - 3600)[0],
        "tampered": f"{header}.{forged_payload}.{sig}",
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "other_key": jwt.encode(claims, "not-our-key", algorithm="HS256"),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize("kind", ["expired", "tampered", "alg_none", "other_key", "garbage"])
def test_bad_tokens_are_401_token_invalid(client, token, kind):
    r = client.get("/member/mypage", **bearer(_bad_tokens(token)[kind]))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid"


def test_a_token_of_an_ended_session_is_refused_at_once(client, token):
    assert client.get("/member/mypage", **bearer(token)).status_code == 200
    tokens.revoke_session("sid-7")
    r = client.get("/member/mypage", **bearer(token))
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid"


def test_tokens_issued_before_logout_all_are_refused(client, token):
    tokens.revoke_all_sessions(7)
    assert client.get("/member/mypage", **bearer(token)).status_code == 401


def test_a_token_is_not_needed_and_not_checked_on_public_routes(client):
    assert client.get("/cloth/list", **bearer("garbage")).status_code == 200


def test_an_upstream_that_is_down_gives_a_fast_json_503(client, settings, dead_url):
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "catalog": dead_url}
    started = time.monotonic()
    r = client.get("/cloth/list")
    assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_unavailable"
    assert time.monotonic() - started < 1.0


def test_a_slow_upstream_gives_a_json_504_after_the_timeout(client, settings):
    settings.UPSTREAM_TIMEOUT_SECONDS = 0.2
    started = time.monotonic()
    r = client.get("/cloth/detail/999")
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < 0.9


def test_the_request_id_goes_to_the_service_and_back(client):
    r = client.get("/cloth/list", HTTP_X_REQUEST_ID="req-abc-123")
    assert r.json()["headers"]["x-request-id"] == "req-abc-123" and r["X-Request-Id"] == "req-abc-123"
    r = client.get("/cloth/list")
    assert r.json()["headers"]["x-request-id"] == r["X-Request-Id"] and len(r["X-Request-Id"]) >= 16


def test_the_path_sent_is_the_path_checked(client):
    got = seen(client.get("/cloth/detail/42"))
    assert got["path"] == "/cloth/detail/42"


def test_the_clients_host_goes_on_so_links_point_at_the_gateway(client):
    got = seen(client.get("/cloth/list", HTTP_HOST="localhost:8000"))["headers"]
    assert got["host"] == "localhost:8000"


def test_an_unknown_host_is_refused_with_json(client):
    r = client.get("/cloth/list", HTTP_HOST="evil.example.com")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


def test_a_body_over_the_limit_is_a_json_413_and_never_forwarded(client, settings):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    r = client.post("/member/login", data=b"x" * (limit + 1), content_type="application/json")
    assert r.status_code == 413, r.content
    assert r.json()["error"]["code"] == "payload_too_large"
    assert str(limit) in r.json()["error"]["message"]
    got = seen(client.post("/member/login", data=b" " * limit, content_type="application/json"))
    assert len(got["body"]) == limit


def test_a_request_without_host_sends_the_gateways_own_name_on(client):
    # An HTTP/1.0 client may send no Host: links the service builds must still name the gateway.
    got = seen(client.get("/cloth/list", SERVER_NAME="127.0.0.1", SERVER_PORT="8000"))["headers"]
    assert got["host"] == "127.0.0.1:8000"

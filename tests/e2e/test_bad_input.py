"""Bad input through the gateway: a clear 4xx in the shop's JSON shape, never a 500 or an HTML page.

Some of these go below ``requests`` (a raw socket): no Host header, a request line or
headers the web server refuses before Django sees them.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import GATEWAY_URL

_GATEWAY = urlsplit(GATEWAY_URL)
DEEP = "[" * 1000 + "]" * 1000


def _raw(request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; return the status, the headers and the body of the answer."""
    with socket.create_connection((_GATEWAY.hostname, _GATEWAY.port), timeout=15) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def _shop_error(headers: dict[str, str], body: bytes) -> dict:
    assert headers.get("content-type", "").startswith("application/json"), (headers, body[:300])
    error = json.loads(body)["error"]
    assert error["code"] and error["message"]
    return error


@pytest.mark.parametrize("path", ["/member/login", "/member/email/send"])
def test_deeply_nested_json_to_a_public_route_is_a_validation_error(gw, path):
    r = gw.post(path, data=DEEP, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "validation_error"


def test_deeply_nested_json_order_is_a_validation_error(gw, buyer):
    r = gw.post("/orders/add", data=DEEP, token=buyer["token"], headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "validation_error"


def test_a_body_over_the_limit_is_413_payload_too_large(gw):
    r = gw.post("/member/login", data=b"x" * (2_621_440 + 1), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
    assert "2621440" in r.json()["error"]["message"]


def test_a_request_without_host_gets_links_that_name_the_gateway(gw, create_drop):
    create_drop()  # two clothes at least, so the first page of one has a next page
    create_drop()
    status, headers, body = _raw(b"GET /cloth/list?page=1&page_size=1 HTTP/1.0\r\n\r\n")
    assert status == 200, body[:300]
    link = json.loads(body)["next"]
    assert link.startswith("/") or urlsplit(link).port == _GATEWAY.port, link


def test_an_overlong_request_line_is_a_json_414(gw):
    status, headers, body = _raw(
        b"GET /cloth/list?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: " + _GATEWAY.netloc.encode() + b"\r\n\r\n"
    )
    assert status == 414
    assert _shop_error(headers, body)["code"] == "uri_too_long"


@pytest.mark.parametrize(
    "extra",
    [b"X-Big: " + b"a" * 9000 + b"\r\n", b"".join(b"X-Many-%d: 1\r\n" % i for i in range(120))],
    ids=["one-header-too-long", "too-many-headers"],
)
def test_headers_over_the_limit_are_a_json_431(gw, extra):
    status, headers, body = _raw(
        b"GET /cloth/list HTTP/1.1\r\nHost: " + _GATEWAY.netloc.encode() + b"\r\n" + extra + b"\r\n"
    )
    assert status == 431
    assert _shop_error(headers, body)["code"] == "headers_too_large"


def test_a_request_line_that_is_not_http_is_a_json_400(gw):
    status, headers, body = _raw(b"HELLO\r\n\r\n")
    assert status == 400
    assert _shop_error(headers, body)["code"] == "bad_request"

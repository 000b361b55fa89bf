"""A real HTTP upstream for the gateway's tests: a tiny threaded server that echoes what it got."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway import admission, answers, apidocs
from shared import tokens
from shared.errors import SAME_ANSWER_HEADER, SAME_ANSWER_WHILE_HEADER

FAKE_SCHEMA = {
    "openapi": "3.0.3",
    "info": {"title": "x", "version": "1"},
    "paths": {
        "/member/join": {
            "post": {
                "summary": "Join",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Join"}}}},
                "responses": {"201": {}},
            }
        },
        "/member/mypage": {"get": {"summary": "Mine", "responses": {"200": {}}}},
        "/cloth/detail/{cloth_id}": {"get": {"summary": "One cloth", "responses": {"200": {}}}},
        "/cloth/details": {"post": {"summary": "internal details", "responses": {"200": {}}}},
        "/cloth/inventory": {"post": {"summary": "internal stock", "responses": {"200": {}}}},
        "/internal/orders/{order_id}": {"get": {"summary": "internal order", "responses": {"200": {}}}},
    },
    "components": {
        "schemas": {"Join": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}}
    },
}


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    slow_seconds = 1.0
    #: "METHOD /path" of every request received, in order (tests clear it)
    received: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        path, _, query = self.path.partition("?")
        _Upstream.received.append(f"{self.command} {path}")
        if path.startswith("/slow") or path == "/cloth/detail/999":
            time.sleep(self.slow_seconds)
        if path == "/health":
            payload, status = {"status": "ok"}, 200
        elif path == "/api/schema":
            payload, status = FAKE_SCHEMA, 200
        else:
            payload = {
                "method": self.command,
                "path": path,
                "query": query,
                "body": body,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
            status = (
                int(self.headers.get("X-Want-Status", 200))
                if "x-want-status" in {k.lower() for k in self.headers}
                else 200
            )
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Retry-After", "7")
        self.send_header("Set-Cookie", "upstream=secret")
        self.send_header("X-Upstream-Internal", "yes")
        if "X-Want-Same-Answer" in self.headers:
            self.send_header(SAME_ANSWER_HEADER, self.headers["X-Want-Same-Answer"])
        if "X-Want-Same-While" in self.headers:
            self.send_header(SAME_ANSWER_WHILE_HEADER, self.headers["X-Want-Same-While"])
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


@pytest.fixture(scope="session")
def upstream_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # the slow route's client gave up: expected
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def dead_url():
    """An address where nothing listens (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def services_at_upstream(settings, upstream_url, redis_db):
    settings.SERVICE_URLS = {name: upstream_url for name in ("member", "catalog", "order", "inventory", "payment")}
    tokens.restore_revocations(sessions=[], members=[])  # Redis holds every revocation (none yet)
    apidocs.clear_cache()
    admission.reset()
    answers.forget()
    yield
    apidocs.clear_cache()
    admission.reset()
    answers.forget()


@pytest.fixture
def upstream_received():
    """What the upstream receives from now on: ["POST /orders/add", ...]."""
    _Upstream.received.clear()
    return _Upstream.received

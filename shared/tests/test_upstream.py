"""Calls between services: a service that is down is 503, one that is slow is 504."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import pytest

from shared import errors, keepalive, upstream


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_is_unavailable_not_timeout(settings):
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "inventory": f"http://127.0.0.1:{_free_port()}"}
    with pytest.raises(errors.UpstreamUnavailable):
        upstream.call("inventory", "GET", "/health", idempotent=True)


def test_slow_service_is_a_timeout(settings):
    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(1.0)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.SERVICE_URLS = {**settings.SERVICE_URLS, "inventory": f"http://127.0.0.1:{server.server_port}"}
        with pytest.raises(errors.UpstreamTimeout):
            upstream.call("inventory", "GET", "/slow", timeout=0.2, idempotent=True)
    finally:
        server.shutdown()


def test_upstream_4xx_keeps_its_code_and_status(settings):
    class Conflict(BaseHTTPRequestHandler):
        def do_POST(self):
            body = b'{"error": {"code": "sold_out", "message": "Sold out."}}'
            self.send_response(409)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Conflict)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.SERVICE_URLS = {**settings.SERVICE_URLS, "inventory": f"http://127.0.0.1:{server.server_port}"}
        with pytest.raises(errors.ShopError) as caught:
            upstream.call_ok("inventory", "POST", "/x", body={}, idempotent=False)
        assert caught.value.status_code == 409 and caught.value.code == "sold_out"
    finally:
        server.shutdown()


class _ClosesReusedConnections(BaseHTTPRequestHandler):
    """Answers the first request of each connection, keeps it alive, then drops the connection
    at the next request without a word: a kept-alive connection the service closed meanwhile."""

    protocol_version = "HTTP/1.1"
    received: list[str]

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(self.path)
        self.served = getattr(self, "served", 0) + 1
        if self.served > 1:
            self.close_connection = True
            return
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def closing_service(settings):
    received: list[str] = []
    handler = type("Handler", (_ClosesReusedConnections,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "catalog": f"http://127.0.0.1:{server.server_port}"}
    upstream.pool().clear()  # no connection kept from another test
    yield received
    server.shutdown()
    server.server_close()
    upstream.pool().clear()


def test_an_idempotent_call_on_a_connection_the_service_closed_is_sent_again_on_a_fresh_one(closing_service):
    assert upstream.call_ok("catalog", "POST", "/cloth/details", body={}, idempotent=True) == {"ok": True}
    # The pooled connection is reused, the service drops it: asked again at once, answered.
    assert upstream.call_ok("catalog", "POST", "/cloth/details", body={}, idempotent=True) == {"ok": True}
    assert closing_service == ["/cloth/details"] * 3


def test_a_call_that_is_not_idempotent_is_never_sent_twice(closing_service):
    upstream.call_ok("catalog", "POST", "/x", body={}, idempotent=False)
    with pytest.raises(errors.UpstreamUnavailable):
        upstream.call_ok("catalog", "POST", "/x", body={}, idempotent=False)
    assert closing_service == ["/x"] * 2


def test_an_idempotent_call_is_sent_again_once_only(settings):
    class DropsEverything(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        received = []

        def do_POST(self):
            self.received.append(self.path)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), DropsEverything)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.SERVICE_URLS = {**settings.SERVICE_URLS, "catalog": f"http://127.0.0.1:{server.server_port}"}
        with pytest.raises(errors.UpstreamUnavailable):
            upstream.call_ok("catalog", "POST", "/y", body={}, idempotent=True)
        assert DropsEverything.received == ["/y"] * 2
    finally:
        server.shutdown()
        server.server_close()


class _ClosesIdleConnections(BaseHTTPRequestHandler):
    """Keeps connections alive, but ends one idle for longer than 0.5 s just as the next request
    arrives, unanswered: the moment a web server's keep-alive timer and a client's reuse cross."""

    protocol_version = "HTTP/1.1"
    received: list[str]

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        last = getattr(self, "last_answer", None)
        if last is not None and time.monotonic() - last > 0.5:
            self.close_connection = True  # dropped, no answer
            return
        self.received.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.last_answer = time.monotonic()

    def log_message(self, *args):
        pass


def test_a_post_after_the_service_closed_an_idle_connection_goes_out_on_a_fresh_one(settings):
    handler = type("Handler", (_ClosesIdleConnections,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pool = keepalive.Pool(f"http://127.0.0.1:{server.server_port}", maxsize=1, idle_reuse_seconds=0.3)
    post = {"headers": {}, "body": b"{}", "connect_timeout": 1.0, "read_timeout": 2.0}
    try:
        assert pool.request("POST", "/first", **post).status == 200
        time.sleep(1.0)  # the server would drop the kept-alive connection under the next request
        # not idempotent: it may be sent once only, so it must not go out on that connection
        assert pool.request("POST", "/second", **post).status == 200
        assert handler.received == ["/first", "/second"]
    finally:
        server.shutdown()
        server.server_close()


class _EndsConnectionsAfterAnswering(BaseHTTPRequestHandler):
    """Answers as if the connection stays open (HTTP/1.1, no ``Connection: close``), then closes
    it: a kept-alive connection the server ended while it sat idle in the pool."""

    protocol_version = "HTTP/1.1"
    received: list[str]

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(self.path)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_a_connection_the_service_ended_while_idle_is_not_used_again():
    handler = type("Handler", (_EndsConnectionsAfterAnswering,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pool = keepalive.Pool(f"http://127.0.0.1:{server.server_port}", maxsize=4, idle_reuse_seconds=60)
    post = {"headers": {}, "body": b"{}", "connect_timeout": 1.0, "read_timeout": 2.0}
    try:
        for n in range(3):
            answer = pool.request("POST", f"/{n}", **post)
            assert (answer.status, answer.data) == (200, b'{"ok": true}')
            time.sleep(0.1)  # the server's close has arrived by the next request
        assert handler.received == ["/0", "/1", "/2"]
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_keeps_its_status_headers_and_body_and_a_service_under_a_path_is_reached_there(settings):
    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self):
            sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = self.path.encode() + b" " + sent
            self.send_response(202)
            self.send_header("Content-Type", "text/plain")
            self.send_header("X-Seen", self.headers.get("X-Asked", ""))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Cache-Control", "private")  # a header sent twice: one value, as urllib3 gave
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pool = keepalive.Pool(f"http://127.0.0.1:{server.server_port}/svc/", maxsize=1, idle_reuse_seconds=60)
    try:
        answer = pool.request(
            "PUT", "/a?b=1", headers={"X-Asked": "yes"}, body=b"hi", connect_timeout=1.0, read_timeout=2.0
        )
        assert answer.status == 202
        assert answer.data == b"/svc/a?b=1 hi"
        assert answer.headers.get("x-seen") == answer.headers["X-Seen"] == "yes"
        assert answer.headers.get("Content-Type") == "text/plain"
        assert answer.headers.get("X-Missing", "none") == "none"
        assert answer.headers.get("cache-control") == "no-cache, private"
    finally:
        server.shutdown()
        server.server_close()

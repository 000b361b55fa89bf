"""Calls between services: a service that is down is 503, one that is slow is 504."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from shared import errors, upstream


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_is_unavailable_not_timeout(settings):
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "inventory": f"http://127.0.0.1:{_free_port()}"}
    with pytest.raises(errors.UpstreamUnavailable):
        upstream.call("inventory", "GET", "/health")


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
            upstream.call("inventory", "GET", "/slow", timeout=0.2)
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
            upstream.call_ok("inventory", "POST", "/x", body={})
        assert caught.value.status_code == 409 and caught.value.code == "sold_out"
    finally:
        server.shutdown()

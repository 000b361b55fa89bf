"""A Redis that lost the token revocations is noticed: restored from the member service, or nobody passes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared import tokens


class _MemberService(BaseHTTPRequestHandler):
    """The member service's restore endpoint: writes back what its PostgreSQL says (one ended session)."""

    calls: list[str] = []

    def do_POST(self):
        self.calls.append(self.path)
        tokens.restore_revocations(sessions=[("ended-sid", 60)], members=[])
        self._answer(b'{"sessions": 1, "members": 0}')

    def do_GET(self):  # /member/mypage, once the gateway let the token pass
        self._answer(b'{"member_id": 7}')

    def _answer(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def member_service(settings):
    _MemberService.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MemberService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "member": f"http://127.0.0.1:{server.server_port}"}
    yield _MemberService.calls
    server.shutdown()
    server.server_close()


def bearer(session_id: str) -> dict:
    token, _ = tokens.issue_access_token(member_id=7, session_id=session_id)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_logout_forgotten_by_a_wiped_redis_is_restored_before_any_token_passes(client, redis_db, member_service):
    ended, live = bearer("ended-sid"), bearer("live-sid")
    redis_db.flushdb()  # the revocation of "ended-sid" is gone with everything else
    r = client.get("/member/mypage", **ended)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid"
    assert member_service == ["/internal/sessions/revocations/restore"]
    assert client.get("/member/mypage", **live).status_code == 200
    assert len(member_service) == 1  # restored once; the marker is back


def test_without_the_member_service_a_wiped_redis_lets_no_token_pass(client, redis_db, settings, dead_url):
    settings.SERVICE_URLS = {**settings.SERVICE_URLS, "member": dead_url}
    redis_db.flushdb()
    r = client.get("/member/mypage", **bearer("live-sid"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_unavailable"
    assert client.get("/cloth/list").status_code == 200  # public routes need no token


def test_a_restore_that_did_not_bring_the_marker_back_lets_no_token_pass(client, redis_db):
    # The echo upstream answers 200 but restores nothing.
    redis_db.flushdb()
    r = client.get("/member/mypage", **bearer("live-sid"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_unavailable"

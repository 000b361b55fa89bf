"""A request that waited too long for a gateway thread is refused before any work, like a full gate refuses.

The web server (shared/gunicorn_worker.py) stamps in the environ when a request was ready
for a thread (``gunicorn.ready_at``, ``time.monotonic()``); the tests set that stamp.
"""

from __future__ import annotations

import time

import pytest

from gateway import admission, early, limits
from gateway.tests.test_limits import member_token, place

READY_AT = "gunicorn.ready_at"


def waited(seconds: float) -> dict:
    """The environ of a request that has waited ``seconds`` for a thread, taken up just now."""
    now = time.monotonic()
    return {READY_AT: now - seconds, "gunicorn.picked_at": now}


def held_ms(redis_db, member: str) -> int:
    """How long the member's order placements are still held (Redis PTTL of their count)."""
    return redis_db.pttl(limits.key(limits.limit(limits.ORDER_MEMBER), member))


def place_waited(client, token: str, seconds: float):
    """An order placement with an empty body that waited ``seconds`` for a thread."""
    return client.post(
        "/orders/add",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **waited(seconds),
    )


@pytest.fixture
def bounds(settings):
    settings.GATEWAY_THREAD_WAIT_SECONDS = 0.5
    settings.GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS, settings.GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS = 3, 2
    admission.reset()
    yield settings
    admission.reset()


def test_a_request_that_waited_longer_than_the_bound_is_refused_before_any_upstream_work(
    client, bounds, upstream_received
):
    r = client.get("/cloth/detail/1", **waited(2.0))
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "overloaded"
    assert r["Content-Type"].startswith("application/json")
    assert 3 <= int(r["Retry-After"]) <= 5
    assert upstream_received == []
    state = admission.gate("catalog").state()
    assert state["refused_late"] == 1 and state["refused"] == 1


def test_a_request_within_the_bound_or_without_a_stamp_goes_on(client, bounds, upstream_received):
    assert client.get("/cloth/detail/1", **waited(0.1)).status_code == 200
    assert client.get("/cloth/detail/1").status_code == 200  # another web server: no stamp, no check
    assert upstream_received == ["GET /cloth/detail/1", "GET /cloth/detail/1"]


def test_the_bound_defaults_to_less_than_the_gates_wait_and_zero_turns_it_off(client, bounds, upstream_received):
    from config import settings as configured

    assert configured.GATEWAY_THREAD_WAIT_SECONDS == 0.15 < configured.GATEWAY_ADMISSION_WAIT_SECONDS
    bounds.GATEWAY_THREAD_WAIT_SECONDS = 0
    assert client.get("/cloth/detail/1", **waited(60.0)).status_code == 200


def test_health_is_answered_however_long_it_waited_and_says_the_gateway_sheds(client, bounds):
    assert client.get("/cloth/detail/1", **waited(2.0)).status_code == 503
    r = client.get("/health", **waited(2.0))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "shedding"
    assert body["shedding"] == {"catalog": 1}
    assert body["admission"]["catalog"]["refused_late"] == 1
    assert body["held_answers"] == 0  # held members answered by the web server's main thread so far


def test_a_connection_opened_ahead_of_its_request_has_not_waited_for_a_thread(client, bounds, upstream_received):
    now = time.monotonic()  # accepted 5 s ago (a browser's preconnect), taken up by a thread at once
    r = client.get("/cloth/detail/1", **{READY_AT: now - 5.0, "gunicorn.picked_at": now - 4.99})
    assert r.status_code == 200


def test_a_token_route_is_refused_before_its_token_is_checked(client, bounds, upstream_received):
    r = client.get("/orders/list/7", HTTP_AUTHORIZATION="Bearer not-a-token", **waited(2.0))
    assert r.status_code == 503 and r.json()["error"]["code"] == "overloaded"
    assert upstream_received == []


def test_a_member_refused_late_is_held_to_its_retry_after_as_at_the_gate(client, bounds, upstream_received, redis_db):
    bounds.GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS = 0
    r = place_waited(client, member_token(7), 2.0)
    assert (r.status_code, r["Retry-After"]) == (503, "3")
    assert 2500 < held_ms(redis_db, "7") <= 3000
    r = place(client, member_token(7))
    assert r.status_code == 429 and int(r["Retry-After"]) == 3
    assert place(client, member_token(8)).status_code == 200  # another member is not held back
    assert upstream_received == ["POST /orders/add"]


def test_a_forged_token_refused_late_holds_nobody(client, bounds, redis_db):
    r = place_waited(client, "x.y.z", 2.0)
    assert r.status_code == 503
    assert redis_db.keys("gateway:rl:order_member:*") == []


def test_a_request_within_the_bound_still_meets_the_gate_and_its_hold(client, bounds, upstream_received, redis_db):
    bounds.GATEWAY_ADMISSION = {**bounds.GATEWAY_ADMISSION, "order": (0, 0, 0.0)}  # every order refused at the gate
    bounds.GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS = 0
    admission.reset()
    r = place_waited(client, member_token(7), 0.4)  # within the bound: it reaches the gate
    assert (r.status_code, r["Retry-After"]) == (503, "3")
    assert admission.gate("order").state()["refused_late"] == 0
    assert 2500 < held_ms(redis_db, "7") <= 3000


# ----------------------------------------------------------------------------- refused in gunicorn's main thread


def _head(method: str, path: str, token: str | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: shop", "Content-Type: application/json"]
    if token is not None:
        lines.append(f"authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n{}").encode()


def test_the_web_servers_early_refusals_are_told_to_the_gateway(settings):
    from shared import gunicorn_worker

    assert early.hold_refused in gunicorn_worker.refusal_listeners


def test_an_order_placement_refused_in_the_main_thread_holds_its_member(bounds, redis_db):
    early.hold_refused([(_head("POST", "/orders/add", member_token(7)), 4, time.monotonic())])
    assert 3500 < held_ms(redis_db, "7") <= 4000


def test_the_hold_ends_retry_after_seconds_after_the_refusal_not_after_this_call(bounds, redis_db):
    early.hold_refused([(_head("POST", "/orders/add", member_token(7)), 4, time.monotonic() - 1.5)])
    assert 2000 < held_ms(redis_db, "7") <= 2500
    early.hold_refused([(_head("POST", "/orders/add", member_token(8)), 4, time.monotonic() - 5)])  # over already
    assert redis_db.keys("gateway:rl:order_member:8") == []


def test_a_batch_holds_each_member_once_until_their_latest_refusal_ends(bounds, redis_db):
    now = time.monotonic()
    click = _head("POST", "/orders/add", member_token(7))
    other = _head("POST", "/orders/add", member_token(8))
    early.hold_refused([(click, 6, now - 1.0), (other, 2, now), (click, 2, now)])  # 7: ends in 5 s, then in 2 s
    assert 4500 < held_ms(redis_db, "7") <= 5000
    assert 1500 < held_ms(redis_db, "8") <= 2000
    # a later, shorter refusal never lets a member go sooner than an earlier one said
    early.hold_refused([(click, 2, time.monotonic())])
    assert held_ms(redis_db, "7") > 4000


@pytest.mark.parametrize(
    "head",
    [
        _head("GET", "/orders/list/7", member_token(7)),  # not an order placement
        _head("POST", "/orders/add", "x.y.z"),  # a forged token
        _head("POST", "/orders/add", None),  # no token
        b"POST /orders/add HTTP/1.1\r\nHost: shop",  # cut short
        b"\x16\x03\x01 not http",
    ],
)
def test_nothing_else_holds_anybody(bounds, redis_db, head):
    early.hold_refused([(head, 4, time.monotonic())])
    assert redis_db.keys("gateway:rl:order_member:*") == []


# ----------------------------------------------------------------------------- holds the main thread answers


@pytest.fixture
def held():
    from shared import gunicorn_worker

    gunicorn_worker.held.clear()
    yield gunicorn_worker.held
    gunicorn_worker.held.clear()


def held_for(held: dict, token: str) -> float:
    """Seconds from now until the hold this process noted for the token ends (-1: none)."""
    until = held.get(f"Bearer {token}".encode())
    return -1.0 if until is None else until - time.monotonic()


def test_the_order_placements_are_the_routes_a_hold_applies_to(settings):
    from shared import gunicorn_worker

    assert early.held_routes() == (
        b"POST /orders/add ",
        b"POST /orders/add?",
        b"POST /orders/add/Wishlist ",
        b"POST /orders/add/Wishlist?",
    )
    assert gunicorn_worker.held_routes == early.held_routes()  # set when the gateway loads


def test_a_member_refused_at_the_gate_or_late_is_noted_for_the_main_thread(client, bounds, held):
    bounds.GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS = 0
    late, at_gate = member_token(7), member_token(8)  # each call issues a new token
    assert place_waited(client, late, 2.0).status_code == 503  # late
    assert 2.5 < held_for(held, late) <= 3.0
    bounds.GATEWAY_ADMISSION = {**bounds.GATEWAY_ADMISSION, "order": (0, 0, 0.0)}
    admission.reset()
    assert place(client, at_gate).status_code == 503  # at the gate
    assert 2.5 < held_for(held, at_gate) <= 3.0


def test_a_member_over_the_order_limit_is_noted_until_the_window_ends(client, settings, upstream_received, held):
    settings.GATEWAY_RATE_LIMITS = {**settings.GATEWAY_RATE_LIMITS, "order_member": (1, 2.0)}
    token = member_token(7)
    assert place(client, token).status_code == 200
    assert held_for(held, token) == -1.0  # within the limit: not held
    r = place(client, token)
    assert r.status_code == 429 and r["Retry-After"] == "2"
    assert 1.5 < held_for(held, token) <= 2.0


def test_a_main_thread_refusal_is_noted_from_its_authorization_as_sent(bounds, redis_db, held):
    token, refused_at = member_token(7), time.monotonic() - 1.0
    early.hold_refused([(_head("POST", "/orders/add", token), 4, refused_at)])
    assert held[f"Bearer {token}".encode()] == refused_at + 4
    early.hold_refused([(_head("POST", "/orders/add", token), 2, time.monotonic())])
    assert held[f"Bearer {token}".encode()] == refused_at + 4  # never shortened
    early.hold_refused([(_head("POST", "/orders/add", "x.y.z"), 4, time.monotonic())])  # a forged token
    early.hold_refused([(_head("GET", "/orders/list/7", member_token(8)), 4, time.monotonic())])
    assert list(held) == [f"Bearer {token}".encode()]

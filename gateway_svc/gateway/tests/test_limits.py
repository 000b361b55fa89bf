"""Rate limits at the gateway, counted in the real (test) Redis: counts, windows, Retry-After, holds."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import Client

from gateway import admission, limits
from shared import tokens
from shared.errors import RateLimited

ORDER = {"lines": [{"variant_id": 1, "quantity": 1}]}


def member_token(member_id: int = 7) -> str:
    access, _ = tokens.issue_access_token(member_id=member_id, session_id=f"sid-{member_id}")
    return access


def place(client, token: str, path: str = "/orders/add"):
    return client.post(
        path, data=json.dumps(ORDER), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


# ----------------------------------------------------------------------------- the limiter alone


def test_count_attempts_per_window_then_refused_with_retry_after(redis_db):
    lim = limits.Limit("address", count=3, window_ms=60_000)
    for _ in range(3):
        limits.hit(lim, "10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        limits.hit(lim, "10.0.0.1")
    assert refused.value.retry_after in (59, 60)  # what is left of the window, whole seconds
    limits.hit(lim, "10.0.0.2")  # another subject counts apart


def test_the_window_starts_at_the_first_attempt_and_ends_with_it(redis_db):
    lim = limits.Limit("address", count=1, window_ms=200)
    limits.hit(lim, "a")
    with pytest.raises(RateLimited) as refused:
        limits.hit(lim, "a")
    assert refused.value.retry_after == 1  # under a second left: rounded up, never 0
    deadline = time.monotonic() + 5
    while redis_db.exists(limits.key(lim, "a")):  # the key expires with its window
        assert time.monotonic() < deadline, "the window never ended"
        time.sleep(0.02)
    limits.hit(lim, "a")  # a new window


def test_refused_attempts_do_not_extend_the_window(redis_db):
    lim = limits.Limit("address", count=1, window_ms=60_000)
    limits.hit(lim, "a")
    redis_db.pexpire(limits.key(lim, "a"), 1500)
    for _ in range(5):
        with pytest.raises(RateLimited) as refused:
            limits.hit(lim, "a")
    assert refused.value.retry_after in (1, 2)
    assert redis_db.pttl(limits.key(lim, "a")) <= 1500


def test_concurrent_attempts_from_many_threads_admit_exactly_the_count(redis_db):
    lim = limits.Limit("address", count=10, window_ms=60_000)

    def attempt(_):
        try:
            limits.hit(lim, "crowd")
        except RateLimited:
            return False
        return True

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, range(100)))
    assert results.count(True) == 10


def test_a_hold_refuses_until_it_ends(redis_db):
    lim = limits.Limit("order_member", count=1, window_ms=500)
    limits.hold(lim, "7", 3)
    with pytest.raises(RateLimited) as refused:
        limits.hit(lim, "7")
    assert refused.value.retry_after == 3


def test_a_hold_is_never_shortened_and_spends_a_window_already_counted(redis_db):
    lim = limits.Limit("order_member", count=2, window_ms=60_000)
    limits.hit(lim, "7")  # one attempt of two counted, for a minute
    limits.hold(lim, "7", 3)  # the window is spent now, and its minute stays
    assert redis_db.pttl(limits.key(lim, "7")) > 50_000
    with pytest.raises(RateLimited):
        limits.hit(lim, "7")
    limits.hold(lim, "8", 5)
    limits.hold(lim, "8", 1)
    assert 4000 < redis_db.pttl(limits.key(lim, "8")) <= 5000


def test_addresses_are_hashed_in_keys_and_members_are_not():
    assert "10.0.0.1" not in limits.key(limits.Limit("address", 1, 1000), "10.0.0.1")
    assert limits.key(limits.Limit("order_member", 1, 1000), "7") == "gateway:rl:order_member:7"


def test_rate_limit_scale_multiplies_the_address_count_only(settings):
    settings.GATEWAY_RATE_LIMITS = {"order_member": (2, 1.0), "address": (50, 1.0)}
    settings.RATE_LIMIT_SCALE = 1000
    assert limits.limit("address") == limits.Limit("address", 50_000, 1000)
    assert limits.limit("order_member") == limits.Limit("order_member", 2, 1000)  # a drop's limit is not a login's
    settings.RATE_LIMIT_SCALE = 0
    assert limits.limit("address") is None
    settings.GATEWAY_RATE_LIMITS = {"order_member": (0, 1.0), "address": (50, 1.0)}
    assert limits.limit("order_member") is None


# ----------------------------------------------------------------------------- through the gateway


@pytest.fixture
def one_order_per_minute(settings):
    settings.GATEWAY_RATE_LIMITS = {**settings.GATEWAY_RATE_LIMITS, "order_member": (1, 60.0)}


@pytest.mark.parametrize("path", ["/orders/add", "/orders/add/Wishlist"])
def test_a_member_over_the_limit_is_refused_before_the_order_service_sees_it(
    client, path, one_order_per_minute, upstream_received
):
    token = member_token(7)
    assert place(client, token, path).status_code == 200
    r = place(client, token, path)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r["Retry-After"]) in (59, 60)
    assert upstream_received == [f"POST {path}"]  # the second attempt never left the gateway
    assert place(client, member_token(8), path).status_code == 200  # another member is not held back


def test_a_member_over_the_limit_is_held_to_the_retry_after_it_was_told(client, settings, upstream_received, redis_db):
    settings.GATEWAY_RATE_LIMITS = {**settings.GATEWAY_RATE_LIMITS, "order_member": (1, 0.3)}
    token, key = member_token(7), "gateway:rl:order_member:7"
    assert place(client, token).status_code == 200
    r = place(client, token)  # within the 0.3 s window: told to come back in a whole second
    assert r.status_code == 429 and r["Retry-After"] == "1"
    assert 900 < redis_db.pttl(key) <= 1000  # held for that second, not for what was left of the window
    time.sleep(0.4)  # the window is over, the second is not
    r = place(client, token)  # clicking again before Retry-After: told what is left of it, whole seconds up
    assert r.status_code == 429 and r["Retry-After"] == "1"
    assert redis_db.pttl(key) <= 600  # and the hold stays as it was: see the next test
    assert upstream_received == ["POST /orders/add"]


def test_clients_of_one_member_that_each_wait_as_told_are_not_held_out_by_each_other(
    client, settings, upstream_received, redis_db
):
    settings.GATEWAY_RATE_LIMITS = {**settings.GATEWAY_RATE_LIMITS, "order_member": (1, 0.3)}
    token = member_token(7)  # two tabs of one member
    assert place(client, token).status_code == 200  # tab A
    b_told = place(client, token)  # tab B, within the window: held for the second it is told
    assert b_told.status_code == 429 and b_told["Retry-After"] == "1"
    b_back = time.monotonic() + 1
    time.sleep(0.5)
    a_told = place(client, token)  # tab A clicks again while B's hold stands: refused, told what is left
    assert a_told.status_code == 429
    time.sleep(max(0.0, b_back - time.monotonic()) + 0.05)
    assert place(client, token).status_code == 200  # B comes back as told: A's refusal did not move B's hold
    assert upstream_received == ["POST /orders/add"] * 2


def test_other_member_routes_are_not_counted(client, one_order_per_minute, upstream_received):
    token = member_token(7)
    for _ in range(3):
        assert client.get("/orders/list/7", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert place(client, token).status_code == 200


def test_an_ended_session_is_told_401_before_any_limit(client, one_order_per_minute, redis_db):
    tokens.revoke_session("sid-7")
    assert [place(client, member_token(7)).status_code for _ in range(2)] == [401, 401]


def test_a_member_refused_as_overloaded_is_held_to_its_retry_after(client, settings, upstream_received, redis_db):
    settings.GATEWAY_ADMISSION = {**settings.GATEWAY_ADMISSION, "order": (0, 0, 0.0)}  # every order refused
    settings.GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS, settings.GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS = 5, 0
    admission.reset()
    token = member_token(7)
    r = place(client, token)
    assert (r.status_code, r.json()["error"]["code"], r["Retry-After"]) == (503, "overloaded", "5")
    # capacity comes back, but clicking again before Retry-After is refused here
    settings.GATEWAY_ADMISSION = {**settings.GATEWAY_ADMISSION, "order": (4, 0, 0.0)}
    admission.reset()
    r = place(client, token)
    assert r.status_code == 429 and int(r["Retry-After"]) in (4, 5)
    assert upstream_received == []
    assert place(client, member_token(8)).status_code == 200


def test_anonymous_routes_are_limited_per_client_address(client, settings, upstream_received):
    settings.GATEWAY_RATE_LIMITS = {**settings.GATEWAY_RATE_LIMITS, "address": (3, 60.0)}
    settings.RATE_LIMIT_SCALE = 1
    for _ in range(3):
        assert client.get("/cloth/list", REMOTE_ADDR="10.0.0.1").status_code == 200
    r = client.post("/member/login", data="{}", content_type="application/json", REMOTE_ADDR="10.0.0.1")
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited" and int(r["Retry-After"]) >= 59
    assert len(upstream_received) == 3
    assert Client(REMOTE_ADDR="10.0.0.2").get("/cloth/list").status_code == 200
    # the client's own X-Forwarded-For changes nothing
    r = client.get("/cloth/list", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert r.status_code == 429


def test_without_redis_anonymous_routes_still_pass(client, settings, upstream_received):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    from shared import redis as shared_redis

    saved, shared_redis._client = shared_redis._client, None
    try:
        assert client.get("/cloth/list").status_code == 200
    finally:
        shared_redis._client = saved

"""Answers a service marks as the same for any identical request, repeated by the gateway itself."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from gateway import answers, limits
from shared import tokens
from shared.errors import SAME_ANSWER_HEADER, SAME_ANSWER_WHILE_HEADER
from shared.metrics import REPEATED_ANSWERS
from shared.redis import values_digest

CLICK = json.dumps({"lines": [{"variant_id": 101, "quantity": 1}]})
_members = itertools.count(1000)  # a member per click unless named: each member's order limit is apart


def member_token(member_id: int) -> str:
    access, _ = tokens.issue_access_token(member_id=member_id, session_id=f"sid-{member_id}")
    return access


@pytest.fixture
def steerable(settings):
    """The echo upstream answers X-Want-Status, marked the same for X-Want-Same-Answer seconds
    (while X-Want-Same-While's condition holds, when given)."""
    settings.GATEWAY_FORWARD_HEADERS = [
        *settings.GATEWAY_FORWARD_HEADERS,
        "X-Want-Status",
        "X-Want-Same-Answer",
        "X-Want-Same-While",
    ]


def click(
    client,
    member_id: int | None = None,
    body: str = CLICK,
    path: str = "/orders/add",
    same_for: str | None = None,
    **kw,
):
    if same_for is not None:
        kw.update(HTTP_X_WANT_STATUS="409", HTTP_X_WANT_SAME_ANSWER=same_for)
    token = member_token(next(_members) if member_id is None else member_id)
    return client.post(path, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", **kw)


def test_a_marked_answer_is_repeated_to_the_next_identical_request_without_the_service(
    client, steerable, upstream_received
):
    repeated = REPEATED_ANSWERS.labels("order", "unknown")  # the echo's body is not an error shape
    before = repeated._value.get()
    first = click(client, 7, same_for="5")
    assert first.status_code == 409 and SAME_ANSWER_HEADER not in first  # the mark stays inside
    again = click(client, 8)  # another member, the same click
    assert again.status_code == 409
    assert again.content == first.content and again["Content-Type"] == first["Content-Type"]
    assert again["X-Request-Id"] != first["X-Request-Id"]  # still this request's own id
    assert upstream_received == ["POST /orders/add"]
    assert repeated._value.get() == before + 1  # counted for the watch screen


def test_only_the_very_same_request_is_answered_from_memory(client, steerable, upstream_received):
    assert click(client, same_for="5").status_code == 409
    other_body = json.dumps({"lines": [{"variant_id": 102, "quantity": 1}]})
    assert click(client, body=other_body).status_code == 200
    assert click(client, path="/orders/add/Wishlist").status_code == 200
    assert click(client, path="/orders/add?x=1").status_code == 200
    as_text = client.post(
        "/orders/add", data=CLICK, content_type="text/plain", HTTP_AUTHORIZATION=f"Bearer {member_token(7)}"
    )
    assert as_text.status_code == 200
    # a retry with its key may be the retry of an order that won: the service answers it
    assert click(client, HTTP_IDEMPOTENCY_KEY="k-1").status_code == 200
    assert len(upstream_received) == 6


def test_the_token_and_the_members_limit_still_come_first(client, steerable, settings, upstream_received):
    assert click(client, same_for="5").status_code == 409
    bad = client.post("/orders/add", data=CLICK, content_type="application/json", HTTP_AUTHORIZATION="Bearer nope")
    assert bad.status_code == 401
    settings.GATEWAY_RATE_LIMITS = {**settings.GATEWAY_RATE_LIMITS, "order_member": (1, 60.0)}
    assert click(client, 9).status_code == 409  # from memory, counted
    assert click(client, 9).status_code == 429
    assert upstream_received == ["POST /orders/add"]


def test_the_answer_is_kept_only_as_long_as_the_service_said(client, steerable, upstream_received):
    assert click(client, same_for="0.05").status_code == 409
    assert click(client).status_code == 409
    time.sleep(0.06)
    assert click(client).status_code == 200  # the service is asked again, and answers anew
    assert len(upstream_received) == 2


def test_the_gateway_caps_the_time_and_the_entries(client, steerable, settings, upstream_received):
    settings.GATEWAY_SAME_ANSWER_MAX_SECONDS = 0.05
    assert click(client, same_for="3600").status_code == 409
    time.sleep(0.06)
    assert click(client).status_code == 200
    settings.GATEWAY_SAME_ANSWER_ENTRIES = 0  # off
    assert click(client, same_for="5").status_code == 409
    assert click(client).status_code == 200
    assert len(upstream_received) == 4


@pytest.mark.parametrize("same_for", ["soon", "nan", "-1", "0"])
def test_a_mark_that_is_not_a_positive_number_of_seconds_is_ignored(client, steerable, same_for, upstream_received):
    assert click(client, same_for=same_for).status_code == 409
    assert click(client).status_code == 200
    assert len(upstream_received) == 2


def test_a_success_without_a_condition_is_never_repeated(client, steerable, upstream_received):
    assert click(client, HTTP_X_WANT_SAME_ANSWER="5").status_code == 200
    assert click(client).status_code == 200
    assert len(upstream_received) == 2


def read(client, path="/cloth/detail/5", **kw):
    return client.get(path, **kw)


def condition(redis_db, *keys: str) -> str:
    return " ".join((values_digest(redis_db.mget(keys)), *keys))


def test_a_success_is_repeated_while_its_redis_keys_hold_the_same_values(
    client, steerable, redis_db, upstream_received
):
    redis_db.set("catalog:1:cloth:cache-epoch", b"\x80epoch")
    redis_db.set("catalog:1:cloth:version", 3)  # the cloth's own version is not there yet (0)
    keys = ("catalog:1:cloth:cache-epoch", "catalog:1:cloth:version", "catalog:1:cloth:5:version")
    repeated = REPEATED_ANSWERS.labels("catalog", "ok")
    before = repeated._value.get()
    mark = {"HTTP_X_WANT_SAME_ANSWER": "5", "HTTP_X_WANT_SAME_WHILE": condition(redis_db, *keys)}
    first = read(client, **mark)
    assert first.status_code == 200
    assert SAME_ANSWER_HEADER not in first and SAME_ANSWER_WHILE_HEADER not in first  # the marks stay inside
    again = read(client)
    assert again.status_code == 200 and again.content == first.content
    assert again["Content-Type"] == first["Content-Type"] and again["Retry-After"] == first["Retry-After"] == "7"
    assert upstream_received == ["GET /cloth/detail/5"]
    assert repeated._value.get() == before + 1

    redis_db.incr("catalog:1:cloth:5:version")  # the cloth's stock changed: the catalog is asked again
    assert read(client).status_code == 200
    assert upstream_received == ["GET /cloth/detail/5"] * 2
    assert read(client).status_code == 200  # and, unmarked this time, asked every time
    assert len(upstream_received) == 3


def test_a_kept_success_goes_only_to_the_very_same_read(client, steerable, redis_db, upstream_received):
    redis_db.set("epoch", "e")
    mark = {"HTTP_X_WANT_SAME_ANSWER": "5", "HTTP_X_WANT_SAME_WHILE": condition(redis_db, "epoch")}
    assert read(client, **mark).status_code == 200
    assert read(client, HTTP_HOST="localhost").status_code == 200  # pages link to the host they were asked on
    assert read(client, HTTP_ACCEPT="text/html").status_code == 200
    assert read(client, HTTP_ACCEPT_LANGUAGE="ko").status_code == 200
    assert read(client, path="/cloth/detail/5?x=1").status_code == 200
    assert read(client, path="/cloth/detail/6").status_code == 200
    assert len(upstream_received) == 6
    read(client)
    assert len(upstream_received) == 6  # the same read again: repeated


def test_a_success_is_not_repeated_when_its_condition_cannot_be_checked(
    client, steerable, redis_db, upstream_received, dead_url, monkeypatch
):
    import redis

    redis_db.set("epoch", "e")
    mark = {"HTTP_X_WANT_SAME_ANSWER": "5", "HTTP_X_WANT_SAME_WHILE": condition(redis_db, "epoch")}
    assert read(client, **mark).status_code == 200
    down = redis.Redis.from_url(dead_url.replace("http", "redis"), socket_connect_timeout=0.2)
    monkeypatch.setattr(answers, "get_redis", lambda: down)  # Redis is down for the gateway now
    monkeypatch.setattr(limits, "get_redis", lambda: down)  # (the address's count too: let through)
    assert read(client).status_code == 200
    assert len(upstream_received) == 2


class _CountingRedis:
    """The gateway's Redis client, counting round trips (a command, or a pipeline's execute)."""

    def __init__(self, real):
        self.real, self.trips = real, 0

    def pipeline(self, **kwargs):
        pipe = self.real.pipeline(**kwargs)
        execute = pipe.execute

        def counted(*args, **kw):
            self.trips += 1
            return execute(*args, **kw)

        pipe.execute = counted
        return pipe

    def __getattr__(self, name):
        attr = getattr(self.real, name)
        if not callable(attr):
            return attr

        def counted(*args, **kw):
            self.trips += 1
            return attr(*args, **kw)

        return counted


def test_a_repeated_read_counts_the_address_and_checks_its_condition_in_one_round_trip(
    client, steerable, redis_db, upstream_received, monkeypatch
):
    from shared.redis import get_redis

    redis_db.set("epoch", "e")
    mark = {"HTTP_X_WANT_SAME_ANSWER": "5", "HTTP_X_WANT_SAME_WHILE": condition(redis_db, "epoch")}
    assert read(client, **mark).status_code == 200
    counting = _CountingRedis(get_redis())
    monkeypatch.setattr(answers, "get_redis", lambda: counting)
    monkeypatch.setattr(limits, "get_redis", lambda: counting)
    assert read(client).status_code == 200
    assert upstream_received == ["GET /cloth/detail/5"]  # repeated
    assert counting.trips == 1
    address = limits.key(limits.limit(limits.ADDRESS), "127.0.0.1")
    assert int(redis_db.get(address)) == 2  # both reads were counted

    redis_db.set("epoch", "changed")  # the condition read with the count no longer holds: asked again
    assert read(client).status_code == 200
    assert len(upstream_received) == 2 and counting.trips == 2


@pytest.mark.parametrize("condition_header", ["", "digest-only", " ".join(["d"] + [f"k{i}" for i in range(9)])])
def test_a_success_with_a_condition_that_is_not_one_is_not_kept(client, steerable, upstream_received, condition_header):
    mark = {"HTTP_X_WANT_SAME_ANSWER": "5", "HTTP_X_WANT_SAME_WHILE": condition_header}
    assert read(client, **mark).status_code == 200
    assert read(client).status_code == 200
    assert len(upstream_received) == 2


def test_memory_full_of_live_answers_keeps_no_more(settings):
    settings.GATEWAY_SAME_ANSWER_ENTRIES = 1

    class Upstream:
        status, data = 409, b"{}"
        headers = {SAME_ANSWER_HEADER: "5", "Content-Type": "application/json"}

    meta = {"CONTENT_TYPE": "application/json"}
    answers.learn("order", "POST", "/orders/add", meta, b"a", Upstream)
    answers.learn("order", "POST", "/orders/add", meta, b"b", Upstream)
    assert answers.recall("POST", "/orders/add", meta, b"a") is not None
    assert answers.recall("POST", "/orders/add", meta, b"b") is None

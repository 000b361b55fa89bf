"""Overload through the stack's gateway: a burst beyond its bound is refused at once, the admitted all complete.

``manage_all.py test`` runs the e2e stack's gateway with one catalog request in flight and
one waiting per process (``GATEWAY_ADMISSION_IN_FLIGHT`` / ``_QUEUE``: catalog=1), so a
burst of a few dozen catalog reads is always beyond the bound.
"""

from __future__ import annotations

import http.client
import json
import os
import uuid
from urllib.parse import urlsplit

import pytest
import redis

from .conftest import GATEWAY_URL

BURST = 40  # under the per-address limit of anonymous routes (50 a second), far over the bound


def _clear_address_counts() -> None:
    """Earlier tests' anonymous requests from this address count in the current window: start afresh."""
    url = os.environ.get("E2E_REDIS_URL")
    if not url:
        return
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter("gateway:rl:address:*", count=1000))
    if keys:
        client.delete(*keys)


def _burst(paths: list[str]) -> list[tuple[int, dict[str, str], bytes]]:
    """Every request sent before any answer is read, each on its own connection; all answers."""
    parts = urlsplit(GATEWAY_URL)
    conns = [http.client.HTTPConnection(parts.hostname, parts.port, timeout=30) for _ in paths]
    for conn in conns:
        conn.connect()
    for conn, path in zip(conns, paths, strict=True):
        conn.request("GET", path)
    answers = []
    for conn in conns:
        r = conn.getresponse()
        answers.append((r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()))
        conn.close()
    return answers


@pytest.mark.skipif(not os.environ.get("E2E_REDIS_URL"), reason="needs the e2e stack's small catalog bound")
def test_a_burst_beyond_the_gateways_bound_gets_503_overloaded_and_the_admitted_all_complete(gw):
    bound = gw.get("/health").json()["admission"]["catalog"]
    assert bound["in_flight_limit"] + bound["queue_limit"] < BURST // 3, bound
    _clear_address_counts()
    # Catalog lists no one asked for before: each misses the cache and reads PostgreSQL.
    answers = _burst([f"/cloth/list?brand=burst-{uuid.uuid4().hex[:8]}" for _ in range(BURST)])

    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}, statuses  # nothing else: no 5xx, no hang, no rate limit
    refused = [(headers, json.loads(body)) for status, headers, body in answers if status == 503]
    assert refused, f"a burst of {BURST} was never beyond the bound: {statuses}"
    for headers, body in refused:
        assert body["error"]["code"] == "overloaded", body
        assert headers["content-type"].startswith("application/json")
        assert int(headers["retry-after"]) >= 1
    admitted = [json.loads(body) for status, _, body in answers if status == 200]
    assert admitted and all(page["count"] == 0 for page in admitted)  # complete answers, not cut short

    assert gw.get("/health", polite=False).status_code == 200  # the gateway's health is not behind the gate

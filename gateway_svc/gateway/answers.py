"""Answers the gateway repeats itself, for a moment, instead of asking a service again.

A service may mark an error answer with ``X-Same-Answer-For: <seconds>`` (shared.errors.
SAME_ANSWER_HEADER): any request with the same method, path, query, content type and body
gets this same answer for that long, whoever sends it. The order service marks its
remembered sold-out answer so; in a drop most clicks come after the last unit is gone, and
each of those is then answered here: after the token and the member's limit, before the
admission gate, with no upstream call and no order-service work.

The service decides what may be repeated and for how long; the gateway only keeps the
answer, in this process, keyed by the request's bytes. It never answers a request that
carries an ``Idempotency-Key`` this way (that may be the retry of an order that won), and
it keeps at most ``GATEWAY_SAME_ANSWER_ENTRIES`` answers (0 turns this off), each at most
``GATEWAY_SAME_ANSWER_MAX_SECONDS``.
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

from django.conf import settings
from django.http import HttpResponse

from shared.errors import SAME_ANSWER_HEADER
from shared.metrics import count_repeated_answer

#: bodies longer than this are never kept (a drop's click is a few dozen bytes)
MAX_BODY_BYTES = 2048


class _Kept(NamedTuple):
    until: float
    status: int
    content_type: str
    data: bytes
    upstream: str
    #: the error code in the body, for shop_repeated_answers_total
    code: str


# (method, path, query, content type, body) -> the answer; plain dict operations, atomic under the GIL
_kept: dict[tuple[Any, ...], _Kept] = {}


def _key(method: str, path: str, meta: dict[str, Any], body: bytes | None) -> tuple[Any, ...] | None:
    if meta.get("HTTP_IDEMPOTENCY_KEY") or (body is not None and len(body) > MAX_BODY_BYTES):
        return None
    return (method, path, meta.get("QUERY_STRING", ""), meta.get("CONTENT_TYPE", ""), body)


def recall(method: str, path: str, meta: dict[str, Any], body: bytes | None) -> HttpResponse | None:
    """The answer a service said this same request gets for now, or None."""
    if not _kept:
        return None
    key = _key(method, path, meta, body)
    kept = _kept.get(key) if key is not None else None
    if kept is None:
        return None
    if kept.until <= time.monotonic():
        _kept.pop(key, None)
        return None
    count_repeated_answer(kept.upstream, kept.code)
    return HttpResponse(kept.data, status=kept.status, content_type=kept.content_type)


def learn(service: str, method: str, path: str, meta: dict[str, Any], body: bytes | None, upstream: Any) -> None:
    """Keep the service's answer when it says the same request gets it for a while."""
    raw = upstream.headers.get(SAME_ANSWER_HEADER)
    entries = settings.GATEWAY_SAME_ANSWER_ENTRIES
    if raw is None or entries <= 0 or upstream.status < 400:
        return
    try:
        seconds = min(float(raw), settings.GATEWAY_SAME_ANSWER_MAX_SECONDS)
    except ValueError:
        return
    key = _key(method, path, meta, body)
    if key is None or not seconds > 0:  # also refuses NaN
        return
    now = time.monotonic()
    if len(_kept) >= entries:
        for stale in [k for k, kept in list(_kept.items()) if kept.until <= now]:
            _kept.pop(stale, None)
        if len(_kept) >= entries:
            return  # full of live answers: the service answers the rest itself
    content_type = upstream.headers.get("Content-Type", "application/json")
    _kept[key] = _Kept(now + seconds, upstream.status, content_type, upstream.data, service, _code(upstream.data))


def _code(data: bytes) -> str:
    try:
        code = json.loads(data)["error"]["code"]
    except (ValueError, TypeError, KeyError):
        return "unknown"
    return code if isinstance(code, str) else "unknown"


def forget() -> None:
    _kept.clear()

"""Answers the gateway repeats itself, for a moment, instead of asking a service again.

A service may mark an answer with ``X-Same-Answer-For: <seconds>`` (shared.errors.
SAME_ANSWER_HEADER): any request with the same method, path, query, body and the headers
that can change an answer (content type, host, accept, language, If-None-Match) gets this
same answer for that long, whoever sends it. Two services do:

- the order service marks its remembered sold-out answer (an error). In a drop most clicks
  come after the last unit is gone, and each of those is then answered here: after the
  token and the member's limit, before the admission gate, with no upstream call and no
  order-service work.
- the catalog marks its cached list and detail (a success), and adds ``X-Same-Answer-While:
  <digest> <key> ...`` (SAME_ANSWER_WHILE_HEADER): the answer stays true only while those
  Redis keys (its cache's epoch and versions) hold the values of that digest. Before each
  repeat the gateway reads them again, in one MGET, sent in the same round trip as the
  client address's rate limit count (views.proxy); when they changed, or Redis cannot be
  read, the request goes to the catalog. A success without that condition is never kept.

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
from redis.exceptions import RedisError

from shared.errors import SAME_ANSWER_HEADER, SAME_ANSWER_WHILE_HEADER
from shared.metrics import count_repeated_answer
from shared.redis import get_redis, values_digest

#: bodies longer than this are never kept (a drop's click is a few dozen bytes)
MAX_BODY_BYTES = 2048
#: a success's condition names at most this many Redis keys
MAX_WATCHED_KEYS = 8
#: request headers (their WSGI names) a service's answer may depend on: part of the key
_KEYED_HEADERS = ("CONTENT_TYPE", "HTTP_HOST", "HTTP_ACCEPT", "HTTP_ACCEPT_LANGUAGE", "HTTP_IF_NONE_MATCH")


class _Kept(NamedTuple):
    until: float
    status: int
    content_type: str
    data: bytes
    upstream: str
    #: the error code in the body ("ok" for a success), for shop_repeated_answers_total
    code: str
    #: response headers passed back besides the content type (GATEWAY_RETURN_HEADERS)
    headers: tuple[tuple[str, str], ...] = ()
    #: a success's condition: the digest its Redis keys must still give, and the keys
    watch: tuple[str, tuple[str, ...]] | None = None


# (method, path, query, body, keyed headers) -> the answer; plain dict operations, atomic under the GIL
_kept: dict[tuple[Any, ...], _Kept] = {}


def _key(method: str, path: str, meta: dict[str, Any], body: bytes | None) -> tuple[Any, ...] | None:
    if meta.get("HTTP_IDEMPOTENCY_KEY") or (body is not None and len(body) > MAX_BODY_BYTES):
        return None
    return (method, path, meta.get("QUERY_STRING", ""), body, *(meta.get(name, "") for name in _KEYED_HEADERS))


#: A kept answer found for a request, before its condition is checked: (its key, the answer).
Found = tuple[tuple[Any, ...], _Kept]


def find(method: str, path: str, meta: dict[str, Any], body: bytes | None) -> Found | None:
    """The answer kept for this very request and not yet over, its condition not yet checked."""
    if not _kept:
        return None
    key = _key(method, path, meta, body)
    kept = _kept.get(key) if key is not None else None
    if kept is None:
        return None
    if kept.until <= time.monotonic():
        _kept.pop(key, None)
        return None
    return key, kept


def watched(found: Found | None) -> tuple[str, ...]:
    """The Redis keys whose values decide whether ``found`` still holds (none: it holds)."""
    return found[1].watch[1] if found is not None and found[1].watch is not None else ()


def repeat(found: Found, values: list[bytes | None] | None) -> HttpResponse | None:
    """``found``'s answer, if its condition holds for ``values`` (read from :func:`watched`'s keys;
    None: they could not be read, and the service answers)."""
    key, kept = found
    if kept.watch is not None and (values is None or values_digest(values) != kept.watch[0]):
        _kept.pop(key, None)
        return None
    count_repeated_answer(kept.upstream, kept.code)
    response = HttpResponse(kept.data, status=kept.status, content_type=kept.content_type)
    for name, value in kept.headers:
        response[name] = value
    return response


def recall(method: str, path: str, meta: dict[str, Any], body: bytes | None) -> HttpResponse | None:
    """The answer a service said this same request gets for now, or None."""
    found = find(method, path, meta, body)
    if found is None:
        return None
    values = None
    if keys := watched(found):
        try:
            values = get_redis().mget(keys)
        except RedisError:  # cannot be checked: the service answers (and knows what to do without Redis)
            values = None
    return repeat(found, values)


def learn(service: str, method: str, path: str, meta: dict[str, Any], body: bytes | None, upstream: Any) -> None:
    """Keep the service's answer when it says the same request gets it for a while."""
    raw = upstream.headers.get(SAME_ANSWER_HEADER)
    entries = settings.GATEWAY_SAME_ANSWER_ENTRIES
    if raw is None or entries <= 0:
        return
    watch = None
    if upstream.status == 200:
        watch = _watch(upstream.headers.get(SAME_ANSWER_WHILE_HEADER))
        if watch is None:
            return  # a success is only repeated under a condition the gateway can check
    elif upstream.status < 400:
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
    headers = tuple(
        (name, value)
        for name in settings.GATEWAY_RETURN_HEADERS
        if name != "Content-Type" and (value := upstream.headers.get(name)) is not None
    )
    code = "ok" if watch is not None else _code(upstream.data)
    _kept[key] = _Kept(now + seconds, upstream.status, content_type, upstream.data, service, code, headers, watch)


def _watch(raw: str | None) -> tuple[str, tuple[str, ...]] | None:
    """``<digest> <key> ...`` as (digest, keys), or None when it is not that."""
    parts = (raw or "").split()
    if len(parts) < 2 or len(parts) > MAX_WATCHED_KEYS + 1:
        return None
    return parts[0], tuple(parts[1:])


def _code(data: bytes) -> str:
    try:
        code = json.loads(data)["error"]["code"]
    except (ValueError, TypeError, KeyError):
        return "unknown"
    return code if isinstance(code, str) else "unknown"


def forget() -> None:
    _kept.clear()

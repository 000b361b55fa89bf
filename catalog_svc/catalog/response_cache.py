"""Whole public responses kept as the bytes sent: in Redis, shared by every catalog
process, and in each process's memory too, so a hit costs one Redis read (the versions).

The list and the detail are read far more than anything changes, and most of their cost
is Django REST framework's work per request, not the database. A hit skips all of it.
Entries are keyed by the catalog's cache version (bumped when a cloth changes or comes
in or out of stock), a detail also by its cloth's own version (bumped on every stock
change), the path, the query and the host (pages link to each other). An entry never outlives the
next sale start it shows: ``on_sale`` flips at that instant, so the entry ends there.
A process's own copy is keyed by the same versions, read from Redis on every request, and
by Redis's epoch (see ``selectors.CacheVersion``), so it is never older than Redis's; at
most ``CATALOG_LOCAL_CACHE_ENTRIES`` are kept (then all are dropped and kept afresh).

Each cached answer says so to the gateway (shared.errors.SAME_ANSWER_HEADER and
SAME_ANSWER_WHILE_HEADER): for how long it stays true, and under which of Redis's values
(the epoch and the versions it is keyed by). The gateway then repeats it to the same
request itself after reading those values again, with no call here (gateway/answers.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from catalog import selectors
from shared.errors import SAME_ANSWER_HEADER, SAME_ANSWER_WHILE_HEADER


def _key(request: HttpRequest, version: str) -> str:
    raw = f"{request.get_host()}|{request.path}|{sorted(request.GET.lists())}"
    return f"cloth:v{version}:response:{hashlib.sha1(raw.encode()).hexdigest()}"


def _sale_starts(body: Any) -> list[str]:
    items = body.get("results", [body]) if isinstance(body, dict) else []
    return [i["sale_starts_at"] for i in items if isinstance(i, dict) and i.get("sale_starts_at")]


def seconds_to_keep(content: bytes, now: dt.datetime | None = None) -> int:
    """How long these bytes stay true: the cache time, cut at the next sale start they show."""
    keep = float(settings.CATALOG_CACHE_SECONDS)
    now = now or dt.datetime.now(dt.UTC)
    for start in _sale_starts(json.loads(content)):
        until = (dt.datetime.fromisoformat(start) - now).total_seconds()
        if until > 0:
            keep = min(keep, until)
    return math.floor(keep)


#: this process's copies: local key -> (the bytes, until when on the monotonic clock)
_kept: dict[str, tuple[bytes, float]] = {}


def _kept_copy(local_key: str) -> tuple[bytes, float] | None:
    """The bytes and the seconds they stay true, or None."""
    entry = _kept.get(local_key)
    if entry is None:
        return None
    left = entry[1] - time.monotonic()
    return (entry[0], left) if left > 0 else None


def _keep(local_key: str, content: bytes, seconds: float) -> None:
    if seconds < 1:
        return
    if len(_kept) >= settings.CATALOG_LOCAL_CACHE_ENTRIES:
        _kept.clear()  # old versions' copies are never read again: drop them all at once
    _kept[local_key] = (content, time.monotonic() + seconds)


def forget_kept_copies() -> None:
    _kept.clear()


def _answer(content: bytes, seconds: float, current: selectors.CacheVersion) -> HttpResponse:
    """The cached bytes, marked for the gateway as the same answer while Redis holds the same values."""
    response = HttpResponse(content, content_type="application/json")
    _mark(response, seconds, current)
    return response


def _mark(response: HttpResponse, seconds: float, current: selectors.CacheVersion) -> None:
    if current.digest is not None and seconds > 0:
        response[SAME_ANSWER_HEADER] = f"{seconds:.3f}"
        response[SAME_ANSWER_WHILE_HEADER] = " ".join((current.digest, *current.keys))


def cached_response(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "GET" or settings.CATALOG_CACHE_SECONDS <= 0:
            return view(request, *args, **kwargs)
        # a detail: its cloth's own version too (stock changes)
        current = selectors.cache_version(kwargs.get("cloth_id"))
        if current is None:  # no Redis: answer from PostgreSQL
            return view(request, *args, **kwargs)
        key = _key(request, current.version)
        local_key = f"{current.epoch}|{key}" if current.epoch and settings.CATALOG_LOCAL_CACHE_ENTRIES > 0 else None
        if local_key is not None:
            kept = _kept_copy(local_key)
            if kept is not None:
                return _answer(kept[0], kept[1], current)
        hit = cache.get(key)  # None in a cache outage too: it only costs the full answer
        if hit is not None:
            keep = seconds_to_keep(hit)
            if local_key is not None:
                _keep(local_key, hit, keep)
            return _answer(hit, keep, current)
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            if hasattr(response, "render"):
                response.render()
            keep = seconds_to_keep(response.content)
            if keep >= 1:
                cache.set(key, response.content, timeout=keep)  # in an outage, the next read renders it again
                if local_key is not None:
                    _keep(local_key, response.content, keep)
                _mark(response, keep, current)
        return response

    return wrapped

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


def _kept_copy(local_key: str) -> bytes | None:
    entry = _kept.get(local_key)
    return entry[0] if entry is not None and entry[1] > time.monotonic() else None


def _keep(local_key: str, content: bytes, seconds: float) -> None:
    if seconds < 1:
        return
    if len(_kept) >= settings.CATALOG_LOCAL_CACHE_ENTRIES:
        _kept.clear()  # old versions' copies are never read again: drop them all at once
    _kept[local_key] = (content, time.monotonic() + seconds)


def forget_kept_copies() -> None:
    _kept.clear()


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
                return HttpResponse(kept, content_type="application/json")
        hit = cache.get(key)  # None in a cache outage too: it only costs the full answer
        if hit is not None:
            if local_key is not None:
                _keep(local_key, hit, seconds_to_keep(hit))
            return HttpResponse(hit, content_type="application/json")
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            if hasattr(response, "render"):
                response.render()
            keep = seconds_to_keep(response.content)
            if keep >= 1:
                cache.set(key, response.content, timeout=keep)  # in an outage, the next read renders it again
                if local_key is not None:
                    _keep(local_key, response.content, keep)
        return response

    return wrapped

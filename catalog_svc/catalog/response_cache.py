"""Whole public responses kept in Redis as the bytes sent, so a hit costs two Redis reads.

The list and the detail are read far more than anything changes, and most of their cost
is Django REST framework's work per request, not the database. A hit skips all of it.
Entries are keyed by the catalog's cache version (bumped when a cloth changes or comes
in or out of stock), a detail also by its cloth's own version (bumped on every stock
change), the path, the query and the host (pages link to each other). An entry never outlives the
next sale start it shows: ``on_sale`` flips at that instant, so the entry ends there.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
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


def cached_response(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "GET" or settings.CATALOG_CACHE_SECONDS <= 0:
            return view(request, *args, **kwargs)
        # a detail: its cloth's own version too (stock changes)
        version = selectors.cache_version(kwargs.get("cloth_id"))
        if version is None:  # no Redis: answer from PostgreSQL
            return view(request, *args, **kwargs)
        key = _key(request, version)
        hit = cache.get(key)  # None in a cache outage too: it only costs the full answer
        if hit is not None:
            return HttpResponse(hit, content_type="application/json")
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            if hasattr(response, "render"):
                response.render()
            keep = seconds_to_keep(response.content)
            if keep >= 1:
                cache.set(key, response.content, timeout=keep)  # in an outage, the next read renders it again
        return response

    return wrapped

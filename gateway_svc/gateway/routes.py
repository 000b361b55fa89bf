"""The routing allowlist, compiled once: (method, path) -> the route, or nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from gateway import limits


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    service: str
    public: bool
    #: the rate limit counted on this route (gateway/limits.py), or None
    limit: str | None = None


@lru_cache(maxsize=4)
def _compile(table: tuple, member_limited: tuple) -> dict[str, list[Route]]:
    """Routes grouped by the first path segment, so a request tries two or three regexes, not all."""
    by_segment: dict[str, list[Route]] = {}
    for methods, regex, service, public in table:
        limit = limits.ORDER_MEMBER if regex in member_limited else (limits.ADDRESS if public else None)
        route = Route(frozenset(methods.split()), re.compile(regex), service, public, limit)
        by_segment.setdefault(_segment(regex), []).append(route)
    return by_segment


def _segment(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") and path.count("/") >= 1 else ""


def routes() -> dict[str, list[Route]]:
    return _compile(tuple(tuple(r) for r in settings.GATEWAY_ROUTES), tuple(settings.GATEWAY_MEMBER_LIMITED_ROUTES))


def match(method: str, path: str) -> tuple[Route | None, set[str]]:
    """(the route for method+path, or None; the methods the path allows, for a 405)."""
    allowed: set[str] = set()
    for route in routes().get(_segment(path), ()):
        if route.pattern.fullmatch(path):
            if method in route.methods:
                return route, allowed
            allowed |= route.methods
    return None, allowed


def all_routes() -> list[Route]:
    return [r for group in routes().values() for r in group]

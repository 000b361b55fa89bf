"""Fixed-window counters in Redis for the member service's rate limits.

``RATE_LIMITS[name] = (count, window seconds)``; ``RATE_LIMIT_SCALE`` multiplies the
counts (0 turns limits off). Keys: ``member:rl:<name>:<subject>``, expiring with the window.
"""

from __future__ import annotations

import hashlib

from django.conf import settings

from shared.errors import RateLimited
from shared.redis import get_redis


def _key(name: str, subject: str) -> str:
    # Hashed: addresses and IPs stay out of Redis key listings.
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"member:rl:{name}:{digest}"


def _limit(name: str) -> tuple[int, int] | None:
    count, window = settings.RATE_LIMITS[name]
    scale = settings.RATE_LIMIT_SCALE
    if scale <= 0:
        return None
    return max(1, int(count * scale)), window


def hit(name: str, subject: str, *, message: str | None = None) -> None:
    """Count one request; raise RateLimited (with Retry-After) once the window's count is spent."""
    limit = _limit(name)
    if limit is None:
        return
    count, window = limit
    key = _key(name, subject)
    pipe = get_redis().pipeline()
    pipe.incr(key)
    pipe.expire(key, window, nx=True)
    pipe.ttl(key)
    used, _, ttl = pipe.execute()
    if used > count:
        raise RateLimited(message, retry_after=ttl if ttl and ttl > 0 else window)


def check(name: str, subject: str, *, message: str | None = None) -> None:
    """Raise RateLimited if the count is spent, without counting (for limits on failures only)."""
    limit = _limit(name)
    if limit is None:
        return
    count, window = limit
    key = _key(name, subject)
    pipe = get_redis().pipeline()
    pipe.get(key)
    pipe.ttl(key)
    used, ttl = pipe.execute()
    if used is not None and int(used) >= count:
        raise RateLimited(message, retry_after=ttl if ttl and ttl > 0 else window)


def record_failure(name: str, subject: str) -> None:
    limit = _limit(name)
    if limit is None:
        return
    key = _key(name, subject)
    pipe = get_redis().pipeline()
    pipe.incr(key)
    pipe.expire(key, limit[1], nx=True)
    pipe.execute()


def reset(name: str, subject: str) -> None:
    get_redis().delete(_key(name, subject))

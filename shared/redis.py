"""One Redis client per process, from REDIS_URL."""

from __future__ import annotations

import redis as redis_lib
from django.conf import settings

_client: redis_lib.Redis | None = None


def get_redis() -> redis_lib.Redis:
    global _client
    if _client is None:
        _client = redis_lib.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2.0, socket_connect_timeout=1.0, health_check_interval=30
        )
    return _client

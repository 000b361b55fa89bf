"""One Redis client per process, from REDIS_URL."""

from __future__ import annotations

import redis as redis_lib
from django.conf import settings
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

_client: redis_lib.Redis | None = None


class _Connection(Connection):
    """A connection whose failure while connecting is always a Redis ``ConnectionError``.

    redis-py's health check on a new connection (a PING inside its handshake) that times out
    has been seen to end in ``ValueError: I/O operation on closed file`` from its read
    buffer: callers that handle ``RedisError`` (an outage) would turn it into a 500.
    """

    def connect(self) -> None:
        try:
            super().connect()
        except ValueError as exc:
            self.disconnect()
            raise RedisConnectionError(f"connecting to Redis failed: {exc}") from exc


def get_redis() -> redis_lib.Redis:
    global _client
    if _client is None:
        _client = redis_lib.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=2.0,
            socket_connect_timeout=1.0,
            health_check_interval=30,
            connection_class=_Connection,
        )
    return _client

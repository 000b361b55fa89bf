"""shared.redis: a connection that breaks while connecting is a Redis outage, not a ValueError."""

from __future__ import annotations

import pytest
from redis.connection import Connection
from redis.exceptions import RedisError

from shared import redis as shared_redis


def test_a_value_error_inside_the_handshake_is_a_redis_connection_error(monkeypatch, settings):
    def broken_handshake(self):
        raise ValueError("I/O operation on closed file.")

    monkeypatch.setattr(Connection, "connect", broken_handshake)
    monkeypatch.setattr(shared_redis, "_client", None)
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    try:
        with pytest.raises(RedisError, match="closed file"):
            shared_redis.get_redis().ping()
    finally:
        shared_redis._client = None


def test_the_connection_class_keeps_the_urls_transport():
    from redis.connection import SSLConnection, UnixDomainSocketConnection

    assert issubclass(shared_redis._connection_class("rediss://cache.example:6380/0"), SSLConnection)
    assert issubclass(shared_redis._connection_class("unix:///run/redis.sock?db=0"), UnixDomainSocketConnection)
    plain = shared_redis._connection_class("redis://127.0.0.1:6379/0")
    assert not issubclass(plain, (SSLConnection, UnixDomainSocketConnection))

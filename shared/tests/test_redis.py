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


@pytest.mark.parametrize("broken", [ValueError("I/O operation on closed file."), AttributeError("readline")])
def test_a_handshake_broken_once_is_tried_again_and_twice_is_an_outage(monkeypatch, settings, broken):
    real = Connection.connect
    failures = {"left": 1}

    def flaky_handshake(self):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise broken
        return real(self)

    monkeypatch.setattr(Connection, "connect", flaky_handshake)
    monkeypatch.setattr(shared_redis, "_client", None)
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    try:
        assert shared_redis.get_redis().ping() is True  # the second handshake connected
        shared_redis.get_redis().connection_pool.disconnect()
        failures["left"] = 2
        with pytest.raises(RedisError, match="connecting to Redis failed"):
            shared_redis.get_redis().ping()
    finally:
        shared_redis._client = None


def test_the_connection_class_keeps_the_urls_transport():
    from redis.connection import SSLConnection, UnixDomainSocketConnection

    assert issubclass(shared_redis._connection_class("rediss://cache.example:6380/0"), SSLConnection)
    assert issubclass(shared_redis._connection_class("unix:///run/redis.sock?db=0"), UnixDomainSocketConnection)
    plain = shared_redis._connection_class("redis://127.0.0.1:6379/0")
    assert not issubclass(plain, (SSLConnection, UnixDomainSocketConnection))

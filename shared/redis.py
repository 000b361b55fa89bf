"""One Redis client per process, from REDIS_URL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import redis as redis_lib
from django.conf import settings
from redis.commands.core import Script
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError

_client: redis_lib.Redis | None = None
_scripts: dict[tuple[int, str], Script] = {}


class _ConnectFailsAsRedisError:
    """A connection whose failure while connecting is always a Redis ``ConnectionError``.

    A new connection's handshake has been seen to end in ``ValueError: I/O operation on
    closed file`` or ``AttributeError`` (redis-py's read buffer gone), on a loaded machine
    when a burst made a gateway open several connections at once; the likely cause is the
    health check (a PING inside the handshake) timing out and disconnecting the socket under
    the handshake's own read. Callers that handle ``RedisError`` (an outage) would turn
    either into a 500. A fresh socket usually connects, so the handshake is tried once more
    before it counts as an outage.
    """

    def connect(self) -> None:
        for attempt in (1, 2):
            try:
                super().connect()
                return
            except (ValueError, AttributeError) as exc:
                self.disconnect()
                if attempt == 2:
                    raise RedisConnectionError(f"connecting to Redis failed: {exc}") from exc


class _Connection(_ConnectFailsAsRedisError, Connection):
    pass


class _SSLConnection(_ConnectFailsAsRedisError, SSLConnection):
    pass


class _UnixConnection(_ConnectFailsAsRedisError, UnixDomainSocketConnection):
    pass


def _connection_class(url: str) -> type:
    """The class redis-py would pick for ``url`` (TLS, a socket file, or TCP), made safe."""
    scheme = url.split("://", 1)[0].lower()
    return {"rediss": _SSLConnection, "unix": _UnixConnection}.get(scheme, _Connection)


def get_redis() -> redis_lib.Redis:
    global _client
    if _client is None:
        _client = redis_lib.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=2.0,
            socket_connect_timeout=1.0,
            health_check_interval=30,
            connection_class=_connection_class(settings.REDIS_URL),
        )
    return _client


def script(client: redis_lib.Redis, source: str) -> Script:
    """``source`` registered with ``client`` once per process (EVALSHA, with EVAL when Redis lost it)."""
    key = (id(client), source)
    found = _scripts.get(key)
    if found is None:
        found = _scripts[key] = client.register_script(source)
    return found


def values_digest(values: Iterable[bytes | None]) -> str:
    """A digest of raw values as one MGET gives them (None for a missing key), told apart by length."""
    digest = hashlib.blake2b(digest_size=16)
    for value in values:
        digest.update(b"-;" if value is None else b"%d:%s;" % (len(value), value))
    return digest.hexdigest()

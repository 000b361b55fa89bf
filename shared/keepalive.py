"""Kept-alive HTTP/1.1 connections to one service: the client under every hop between processes.

Each request checks out the connection used last (the one most likely still open), sends
the request and reads the whole answer, then returns the connection for the next request.
It sends a request twice only when the caller says it may (``repeat_if_dropped``): once
more, at once, on a new connection, when the first broke before any answer (most often a
kept-alive one the service had just closed). The callers map the three failures to the
shop's errors:

- :class:`ConnectFailed`: no connection could be made (refused, unreachable, or the connect
  timed out); the request was not sent;
- :class:`Dropped`: the connection broke before a whole answer came; the service may or may
  not have seen the request;
- :class:`TimedOut`: no answer within the read timeout.

A connection idle longer than ``idle_reuse_seconds`` is closed instead of reused: the
services' web servers end kept-alive connections idle for 30 s, and a request sent on one
just as the server ends it is lost without an answer. One the server closed earlier is
noticed before use (its socket reads as ready: end of file) and replaced.

Built on ``http.client`` rather than urllib3's pools: the same exchange, at a little over
half the CPU per request (docs/performance.md, tenth round), and every hop pays it.
"""

from __future__ import annotations

import http.client
import json
import logging
import select
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)


class ConnectFailed(Exception):
    """No connection: refused, unreachable, or the connect timed out (``timed_out``)."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


class Dropped(Exception):
    """The connection broke before a whole answer came."""


class TimedOut(Exception):
    """No answer within the read timeout."""


class Headers(dict):
    """An answer's headers by lower-case name; ``get`` takes any case."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class Answer:
    __slots__ = ("status", "headers", "data")

    def __init__(self, status: int, headers: Headers, data: bytes):
        self.status = status
        self.headers = headers
        self.data = data

    def json(self) -> Any:
        return json.loads(self.data)


def _headers(pairs: list[tuple[str, str]]) -> Headers:
    """The answer's headers; one sent more than once is one value, joined by ", "."""
    headers = Headers()
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle kept-alive socket that reads as ready was closed (or spoke out of turn)."""
    poller = select.poll()  # not select.select: a busy process has descriptors past 1024
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class Pool:
    """Kept-alive connections to the service at ``url`` (``http://host:port``, maybe with a path)."""

    def __init__(self, url: str, *, maxsize: int, idle_reuse_seconds: float):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"an http://host:port address is needed, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")  # a service mounted under a path: every request's path begins with it
        self.maxsize = maxsize
        self.idle_reuse_seconds = idle_reuse_seconds
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []  # the last returned last
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        body: bytes | None = None,
        connect_timeout: float,
        read_timeout: float,
        repeat_if_dropped: bool = False,
    ) -> Answer:
        send = {"headers": headers, "body": body, "connect_timeout": connect_timeout, "read_timeout": read_timeout}
        try:
            return self._send(method, path, fresh=False, **send)
        except Dropped as exc:
            if not repeat_if_dropped:
                raise
            logger.info(
                "%s:%s dropped the connection on %s %s (%s); sending it again", self.host, self.port, method, path, exc
            )
            # Another pooled connection may be just as stale: this one is new.
            return self._send(method, path, fresh=True, **send)

    def _send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        body: bytes | None,
        connect_timeout: float,
        read_timeout: float,
        fresh: bool,
    ) -> Answer:
        conn = None if fresh else self._checkout()
        if conn is None:
            conn = self._connect(connect_timeout)
        conn.sock.settimeout(read_timeout)
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except TimeoutError as exc:
            conn.close()
            raise TimedOut(f"no answer from {self.host}:{self.port} in {read_timeout:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise Dropped(f"{self.host}:{self.port} dropped the connection: {exc!r}") from exc
        answer = Answer(response.status, _headers(response.getheaders()), data)
        if response.will_close:
            conn.close()
        else:
            self._checkin(conn)
        return answer

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise ConnectFailed(f"connecting to {self.host}:{self.port} timed out", timed_out=True) from exc
        except OSError as exc:
            conn.close()
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return conn

    def _checkout(self) -> http.client.HTTPConnection | None:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn, last_used = self._idle.pop()
            if now - last_used <= self.idle_reuse_seconds and not _closed_by_peer(conn.sock):
                return conn
            conn.close()

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.maxsize:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()


class Pools:
    """One :class:`Pool` per service address, made on first use."""

    def __init__(self, *, maxsize: int, idle_reuse_seconds: float):
        self.maxsize = maxsize
        self.idle_reuse_seconds = idle_reuse_seconds
        self._pools: dict[str, Pool] = {}
        self._lock = threading.Lock()

    def for_url(self, url: str) -> Pool:
        pool = self._pools.get(url)
        if pool is None:
            with self._lock:
                pool = self._pools.get(url)
                if pool is None:
                    pool = self._pools[url] = Pool(
                        url, maxsize=self.maxsize, idle_reuse_seconds=self.idle_reuse_seconds
                    )
        return pool

    def clear(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.clear()

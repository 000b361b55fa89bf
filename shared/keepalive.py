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

The exchange is written here on a plain socket, as HTTP/1.1 between the shop's own
processes needs it: a request whose length is known, an answer framed by
``Content-Length``, chunks or the end of the connection. Every hop pays for it, so it
does no more: ``http.client`` parses each answer's headers through the ``email`` package,
and urllib3 adds its pools and retries on top (docs/performance.md, tenth and eleventh
rounds).
"""

from __future__ import annotations

import json
import logging
import re
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
    """The connection broke before a whole answer came, or what came was not an HTTP answer."""


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


#: What a request line's target or a header may not hold: a field that ends early would let
#: a value smuggle in a header (or a request) of its own. A target is visible ASCII only (the
#: callers quote their paths), as ``http.client`` required. Names are the callers' constants.
_BAD_TARGET = re.compile(r"[^\x21-\x7e]")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_MAX_LINE = 65536
_MAX_HEADERS = 100


class _Malformed(Exception):
    """The other end did not answer in HTTP/1.x."""


def _request_bytes(method: str, target: str, host: str, headers: dict[str, str], body: bytes | None) -> bytes:
    if _BAD_TARGET.search(target):
        raise ValueError(f"a request target is visible ASCII only: {target!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    named = {name.lower() for name in headers}
    if "host" not in named:
        lines.append(f"Host: {host}")
    for name, value in headers.items():
        text = value if isinstance(value, str) else str(value)  # a number is sent as its digits
        if _BAD_VALUE.search(text):
            raise ValueError(f"the value of header {name} may not hold CR, LF or NUL")
        lines.append(f"{name}: {text}")
    if "content-length" not in named and (body is not None or method in _BODY_METHODS):
        lines.append(f"Content-Length: {len(body) if body else 0}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


def _read_line(reader) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise _Malformed("a line of the answer is too long")
    return line


def _read_head(reader) -> tuple[int, bool, Headers]:
    """The status, whether the answer is HTTP/1.0, and the headers; informational answers skipped."""
    while True:
        line = _read_line(reader)
        if not line:
            raise _Malformed("the connection ended before an answer")
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise _Malformed(f"not an HTTP status line: {line[:80]!r}")
        headers = Headers()
        for _ in range(_MAX_HEADERS + 1):
            field = _read_line(reader)
            if field in (b"\r\n", b"\n"):
                break
            if not field:
                raise _Malformed("the connection ended within the answer's headers")
            name, colon, value = field.decode("latin-1").partition(":")
            if not colon:
                raise _Malformed(f"not a header line: {field[:80]!r}")
            key = name.strip().lower()
            value = value.strip()
            # A header sent more than once is one value, joined by ", " (as urllib3 joined them).
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        else:
            raise _Malformed(f"more than {_MAX_HEADERS} headers in the answer")
        status = int(code)
        if 100 <= status < 200 and status != 101:
            continue  # "100 Continue" and its kind: the answer follows
        return status, version == b"HTTP/1.0", headers


def _read_chunked(reader) -> bytes:
    parts = []
    while True:
        size_line = _read_line(reader)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _Malformed(f"not a chunk size: {size_line[:80]!r}") from None
        if size == 0:
            while _read_line(reader) not in (b"\r\n", b"\n", b""):  # trailers, unused
                pass
            return b"".join(parts)
        chunk = reader.read(size + 2)
        if len(chunk) < size + 2:
            raise _Malformed("the connection ended within a chunk")
        parts.append(chunk[:size])


class _Connection:
    """One kept-alive socket and the buffered reader of its answers."""

    __slots__ = ("sock", "reader")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader = sock.makefile("rb")

    def exchange(self, request: bytes, *, method: str) -> tuple[Answer, bool]:
        """Send one request and read its whole answer; also whether the connection must end."""
        self.sock.sendall(request)
        status, http10, headers = _read_head(self.reader)
        connection = headers.get("connection", "").lower()
        will_close = "close" in connection or (http10 and "keep-alive" not in connection)
        if method == "HEAD" or status in (204, 304) or status < 200:
            data = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            data = _read_chunked(self.reader)
        elif (length := headers.get("content-length")) is not None:
            try:
                size = int(length)
            except ValueError:
                raise _Malformed(f"not a length: {length!r}") from None
            data = self.reader.read(size)
            if len(data) < size:
                raise _Malformed(f"the answer ended after {len(data)} of {size} bytes")
        else:  # framed by the end of the connection
            data = self.reader.read()
            will_close = True
        return Answer(status, headers, data), will_close

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


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
        self.authority = self.host if self.port == 80 else f"{self.host}:{self.port}"  # the Host a request names
        self.maxsize = maxsize
        self.idle_reuse_seconds = idle_reuse_seconds
        self._idle: list[tuple[_Connection, float]] = []  # the last returned last
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
        # Built before a connection is taken: a header that cannot be sent (ValueError) uses none.
        request = _request_bytes(method, self.prefix + path, self.authority, headers, body)
        send = {"connect_timeout": connect_timeout, "read_timeout": read_timeout}
        try:
            return self._send(method, path, request, fresh=False, **send)
        except Dropped as exc:
            if not repeat_if_dropped:
                raise
            logger.info(
                "%s:%s dropped the connection on %s %s (%s); sending it again", self.host, self.port, method, path, exc
            )
            # Another pooled connection may be just as stale: this one is new.
            return self._send(method, path, request, fresh=True, **send)

    def _send(
        self, method: str, path: str, request: bytes, *, connect_timeout: float, read_timeout: float, fresh: bool
    ) -> Answer:
        conn = None if fresh else self._checkout()
        if conn is None:
            conn = self._connect(connect_timeout)
        conn.sock.settimeout(read_timeout)
        try:
            answer, will_close = conn.exchange(request, method=method)
        except TimeoutError as exc:
            conn.close()
            raise TimedOut(f"no answer from {self.host}:{self.port} in {read_timeout:g} s") from exc
        except (OSError, _Malformed) as exc:
            conn.close()
            raise Dropped(f"{self.host}:{self.port} dropped the connection: {exc!r}") from exc
        if will_close:
            conn.close()
        else:
            self._checkin(conn)
        return answer

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    def _connect(self, timeout: float) -> _Connection:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except TimeoutError as exc:
            raise ConnectFailed(f"connecting to {self.host}:{self.port} timed out", timed_out=True) from exc
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a request goes out whole, at once
        return _Connection(sock)

    def _checkout(self) -> _Connection | None:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn, last_used = self._idle.pop()
            if now - last_used <= self.idle_reuse_seconds and not _closed_by_peer(conn.sock):
                return conn
            conn.close()

    def _checkin(self, conn: _Connection) -> None:
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

"""gunicorn's gthread worker, telling the application when each request was ready for a thread.

A gthread worker's main thread reads every connection with a selector; a connection with a
request on it is handed to the thread pool's queue, and a thread takes it from there. That
queue has no bound and the application does not see it: under a drop a request can wait in
it for seconds before Django, and its admission gates, hear of it. This worker stamps each
request (``time.monotonic()``) when it was handed to the pool and puts the stamp in the
WSGI environ as ``gunicorn.ready_at``, beside ``gunicorn.picked_at`` (when a thread took
it), so the application can tell how long a request waited before it ran. A new connection
is handed on once its request has come: until then it waits in the poller, not in a thread
(gthread would have a thread wait there for it, up to 5 s).

When even that is too late: the worker refuses in its main thread, before a thread or
Django, a request that would wait longer than the application allows. Once the oldest
request still waiting for a thread has waited longer than ``GATEWAY_THREAD_WAIT_SECONDS``
(read from the Django settings of the application, the gateway's; 0 or absent: never),
every request that becomes ready would wait longer still; and when twice as many requests
as threads already wait (a burst, such as a drop's opening second, that arrives faster
than that wait can show), so would the next. Such a request is answered at once with
the gateway's ``503 overloaded`` (same JSON, ``Retry-After`` from
``GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS`` plus 0..``GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS``):
and ``Connection: close``: the bytes received are read first (so the close is a FIN, not a
reset that could lose the answer), the answer fits the socket's buffer, and a request with
a body not yet received in full, or chunked, is left to a thread. ``GET /health`` and
``/metrics`` are never refused. Such refusals are counted in
:data:`refused_early` (``/health`` shows them), and each one's request head is handed to
the :data:`refusal_listeners` the application registered, in a thread of their own, off
the main thread (the gateway holds an order placement's member to the ``Retry-After``).

A client held to a ``Retry-After`` (the application puts it in :data:`held`, by its request's
``Authorization`` header, until the hold ends) that sends one of the :data:`held_routes`
again before then ignores what it was told: the main thread answers it ``429 rate_limited``
itself (no thread, no application, no Redis), on its kept-alive connection, after
``GATEWAY_HELD_ANSWER_DELAY_SECONDS`` (0: such requests go to a thread as any other). A
client that clicks again as soon as it has an answer (a bot's loop) thus clicks at most
once per that delay per connection, and its clicks cost the machine a peek at their first
bytes, not a request. Counted in :data:`held_early`.

``GUNICORN_TIMING_DIR`` (a measurement, off by default): each worker process also writes one
line per request it answered to ``<dir>/timing-<pid>.tsv``: the wall clock when the answer
was written, the method, path and status, and in milliseconds the wait in the pool's queue,
the reading of the request, the application up to the admission gate
(``shop.gate_at`` in the environ, set by the gateway's proxy) and the whole time from
ready to written.

Selected with ``--worker-class shared.gunicorn_worker.ThreadWorker`` (the developer stack's
default for gunicorn); it takes gthread's ``--threads``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import random
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from gunicorn.workers import gthread

READY_AT = "gunicorn.ready_at"
PICKED_AT = "gunicorn.picked_at"
#: Set by the application when a request reaches its admission gate (the gateway's proxy).
GATE_AT = "shop.gate_at"

_local = threading.local()

#: Requests this process refused in its main thread (waiting for a thread would have been too
#: long), and time.monotonic() of the last one.
refused_early = {"count": 0, "last": float("-inf")}
_NEVER_REFUSED = (b"GET /health ", b"GET /health?", b"GET /metrics ", b"GET /metrics?")
_OVERLOADED_BODY = json.dumps(
    {"error": {"code": "overloaded", "message": "The shop is busy; try again in a moment."}}
).encode()  # the gateway's Overloaded, in the shape of shared.errors.error_body
#: Called as ``listener(refusals)`` with the refusals made in the main thread since the last
#: call, oldest first, each ``(request_bytes, retry_after, refused_at)`` (``refused_at``: its
#: time.monotonic()), from a thread of their own, so a moment later; registered by the
#: application when it loads. Batched: in a flood the main thread refuses a thousand requests
#: a second, and a listener called once per refusal (a Redis round trip each, the GIL taken
#: again after each) fell seconds behind them.
refusal_listeners: list[Callable[[list[tuple[bytes, int, float]]], None]] = []
#: At most this many refusals per call of the listeners.
_TOLD_BATCH = 500
_told: queue.SimpleQueue = queue.SimpleQueue()
_telling_lock = threading.Lock()
_telling: threading.Thread | None = None


def _tell_listeners() -> None:
    while True:
        told = [_told.get()]
        while len(told) < _TOLD_BATCH:
            try:
                told.append(_told.get_nowait())
            except queue.Empty:
                break
        for listener in list(refusal_listeners):
            try:
                listener(told)
            except Exception:  # noqa: BLE001 - a listener's failure must not stop the others
                logging.getLogger(__name__).exception("refusal listener failed")


def _tell(data: bytes, retry_after: int, refused_at: float) -> None:
    global _telling  # noqa: PLW0603 - one thread per process, started on first use
    if not refusal_listeners:
        return
    if _telling is None:
        with _telling_lock:
            if _telling is None:
                _telling = threading.Thread(target=_tell_listeners, name="refusal-listeners", daemon=True)
                _telling.start()
    _told.put((data, retry_after, refused_at))


#: Clients held to a Retry-After: the value of their requests' ``Authorization`` header ->
#: time.monotonic() of the hold's end. Written by the application's threads (a member it
#: refused and held), read and pruned by the main thread.
held: dict[bytes, float] = {}
#: The requests a hold applies to, by the start of their request line (``b"POST /orders/add "``,
#: ``b"POST /orders/add?"``); set by the application.
held_routes: tuple[bytes, ...] = ()
#: Held clients' requests this process answered in its main thread (``/health`` shows them).
held_early = {"count": 0}
_HELD_BODY = json.dumps(
    {"error": {"code": "rate_limited", "message": "Too many attempts; try again after Retry-After seconds."}}
).encode()  # the gateway's RateLimited over the member's limit, in the shape of shared.errors.error_body
#: At most this many held requests wait for their answer per process; beyond, they go to a thread.
_HELD_WAITING = 4096
#: Expired holds are dropped from :data:`held` about this often (seconds).
_PRUNE_EVERY = 5.0

#: At most this many requests per thread wait for one; beyond, a new one is refused at once.
WAITING_PER_THREAD = 2
#: A request whose bytes are all here within this much is refused; a longer one goes to a thread.
_PEEK_BYTES = 65536


def _policy() -> tuple[float, int, int, float]:
    """(wait bound s, Retry-After s, jitter s, held answer delay s) from the application's Django
    settings; bound 0: no refusals; delay 0: held clients are answered by a thread."""
    try:
        from django.conf import settings  # noqa: PLC0415 - only once the application is loaded

        bound = float(getattr(settings, "GATEWAY_THREAD_WAIT_SECONDS", 0) or 0)
        return (
            bound,
            int(getattr(settings, "GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS", 2)),
            int(getattr(settings, "GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS", 4)),
            max(0.0, float(getattr(settings, "GATEWAY_HELD_ANSWER_DELAY_SECONDS", 0) or 0)),
        )
    except Exception:  # noqa: BLE001 - not a Django application, or not configured: no refusals
        return 0.0, 2, 4, 0.0


def overloaded_answer(retry_after: int) -> bytes:
    """The whole HTTP answer of a refusal in the main thread."""
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Retry-After: {retry_after}\r\n"
        f"Content-Length: {len(_OVERLOADED_BODY)}\r\n\r\n"
    )
    return head.encode("latin-1") + _OVERLOADED_BODY


def held_answer(retry_after: int) -> bytes:
    """The whole HTTP answer to a held client's request, answered in the main thread; the
    connection stays open."""
    head = (
        "HTTP/1.1 429 Too Many Requests\r\n"
        "Content-Type: application/json\r\n"
        f"Retry-After: {retry_after}\r\n"
        f"Content-Length: {len(_HELD_BODY)}\r\n\r\n"
    )
    return head.encode("latin-1") + _HELD_BODY


def _header(head: bytes, lowered: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower case) in a request head, as sent; None without one."""
    at = lowered.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


def _framing(data: bytes) -> tuple[bytes, bytes, int, int] | None:
    """For a request at the start of ``data`` whose head is all here: (its head, the head in
    lower case, the head's length with its blank line, the body's length); None when the head
    is not all here, or the body is chunked or has no valid length."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[:end]
    lowered = head.lower()
    if b"\r\ntransfer-encoding:" in lowered:
        return None
    length = _header(head, lowered, b"content-length") or b"0"
    if not length.isdigit():
        return None
    return head, lowered, end + 4, int(length)


def _held_request(data: bytes) -> tuple[float, int, int] | None:
    """For a request at the start of ``data`` whose head is all here, sent by a held client:
    (the hold's end, the length of its head, the length of its body); None if it is not
    held for it, if its connection is not to be kept, or if its body is chunked."""
    if not data.startswith(held_routes):
        return None
    framing = _framing(data)
    if framing is None:
        return None
    head, lowered, head_length, body_length = framing
    if not head.split(b"\r\n", 1)[0].endswith(b" HTTP/1.1"):
        return None  # HTTP/1.0 closes after each answer: a thread's business
    authorization = _header(head, lowered, b"authorization")
    until = held.get(authorization) if authorization is not None else None
    if until is None:
        return None
    connection = _header(head, lowered, b"connection")
    if connection is not None and b"close" in connection.lower():
        return None
    return until, head_length, body_length


def _request(data: bytes) -> int | None:
    """The length of the whole request at the start of ``data``; None when it is not all here
    yet, has a chunked body, or is one never refused (/health, /metrics)."""
    if data.startswith(_NEVER_REFUSED):
        return None
    framing = _framing(data)
    if framing is None:
        return None
    _, _, head_length, body_length = framing
    return head_length + body_length if len(data) >= head_length + body_length else None


class _TimingLog:
    """Lines of per-request timings, appended to one file per process, flushed about every second."""

    def __init__(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"timing-{os.getpid()}.tsv")
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._flushed = time.monotonic()

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)
            if time.monotonic() - self._flushed < 1.0 and len(self._lines) < 2000:
                return
            lines, self._lines, self._flushed = self._lines, [], time.monotonic()
        with open(self.path, "a") as f:
            f.write("".join(lines))

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            with open(self.path, "a") as f:
                f.write("".join(lines))


def _ms(later: float | None, earlier: float | None) -> str:
    return "" if later is None or earlier is None else f"{(later - earlier) * 1000:.1f}"


class ThreadWorker(gthread.ThreadWorker):
    """gthread; each request's environ carries when it was ready for a thread and when one took it."""

    def init_process(self) -> None:
        directory = os.environ.get("GUNICORN_TIMING_DIR")
        self._timing = _TimingLog(directory) if directory else None
        #: requests handed to the pool and not yet taken by a thread: id(conn) -> ready stamp, oldest first
        self._waiting: dict[int, float] = {}
        self._waiting_lock = threading.Lock()
        self._bound, self._retry_after, self._jitter, self._held_delay = 0.0, 2, 4, 0.0
        #: held clients' requests waiting for their answer: (when to answer, connection, hold's end), oldest first
        self._held_waiting: deque[tuple[float, Any, float]] = deque()
        self._pruned = time.monotonic()
        super().init_process()  # loads the application, then runs until the worker stops

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self._bound, self._retry_after, self._jitter, self._held_delay = _policy()
        app = self.wsgi
        timed = self._timing is not None

        def stamped(environ: dict[str, Any], start_response: Any) -> Any:
            environ[READY_AT] = getattr(_local, "ready_at", None)
            environ[PICKED_AT] = getattr(_local, "picked_at", None)
            if not timed:
                return app(environ, start_response)
            _local.environ = environ

            def start(status: str, headers: Any, exc_info: Any = None) -> Any:
                environ["shop.status"] = status[:3]
                return start_response(status, headers, exc_info)

            return app(environ, start)

        self.wsgi = stamped

    def enqueue_req(self, conn: Any) -> None:
        if not conn.initialized and not conn.data_ready and self._await_request(conn):
            return
        now = time.monotonic()
        if self._held_delay > 0 and held and self._hold_now(conn, now):
            return
        if self._bound > 0 and self._too_many_waiting(now) and self._refuse_now(conn):
            return
        conn.ready_at = now
        with self._waiting_lock:
            self._waiting[id(conn)] = now
        super().enqueue_req(conn)

    def _await_request(self, conn: Any) -> bool:
        """For a new connection: True when its request has not come yet, and it now waits for it in
        the poller; False when it has (or the client closed), and a thread can read it at once.

        gthread hands a connection to a thread as soon as it is accepted, and the thread waits there
        for the request (up to 5 s). In a drop's opening thousands of buyers connect at once, and
        their requests follow a moment later: the threads sat waiting for them while requests that
        had come waited for a thread, or were refused for having waited too long. It has as long
        to send its request as gthread gave it, and at least the keep-alive timeout."""
        try:
            conn.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            conn.timeout = time.monotonic() + max(self.cfg.keepalive, gthread.DEFAULT_WORKER_DATA_TIMEOUT)
            self.pending_conns.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))
            return True
        except OSError:
            pass  # the thread meets the error and closes the connection
        conn.data_ready = True
        return False

    def _cap_keepalive(self, deadline: float) -> None:
        """A stopping worker closes its kept-alive connections by ``deadline``; also those whose
        request has not come (a browser's preconnect, say), which would otherwise keep it up to
        its graceful timeout. Both lists stay sorted by timeout."""
        super()._cap_keepalive(deadline)
        for conn in self.pending_conns:
            conn.timeout = min(conn.timeout, deadline)

    def _too_many_waiting(self, now: float) -> bool:
        """Whether a request ready now would wait too long for a thread: the oldest waiting one
        already did, or more than twice the threads wait (a burst the threads cannot clear in time)."""
        with self._waiting_lock:
            if len(self._waiting) >= WAITING_PER_THREAD * self.cfg.threads:
                return True
            oldest = next(iter(self._waiting.values()), None)
        return oldest is not None and now - oldest > self._bound

    def _refuse_now(self, conn: Any) -> bool:
        """Answer 503 overloaded in this (the main) thread; False: leave it to a thread."""
        sock = conn.sock
        try:
            data = sock.recv(_PEEK_BYTES, socket.MSG_PEEK)
        except OSError:
            return False
        if not data or conn.is_http2 or (conn.parser is not None and conn.parser.unreader.buf.getvalue()):
            return False  # closed by the client, or bytes the parser already holds: the thread's business
        request = _request(data)
        if request is None:
            return False
        retry_after = self._retry_after + random.randint(0, max(0, self._jitter))  # noqa: S311 - not a secret
        try:
            sock.recv(len(data))  # what was received: the close is then a FIN, not a reset
            sock.send(overloaded_answer(retry_after))
        except OSError:
            pass
        self.nr_conns -= 1
        conn.close()
        refused_early["count"] += 1
        refused_early["last"] = now = time.monotonic()
        _tell(data[:request], retry_after, now)
        return True

    def _hold_now(self, conn: Any, now: float) -> bool:
        """Take a held client's request off the connection, to answer it after the delay in this
        (the main) thread; False: not held, or not one to answer here (a thread's business)."""
        if len(self._held_waiting) >= _HELD_WAITING or conn.is_http2:
            return False
        if conn.parser is not None and conn.parser.unreader.buf.getvalue():
            return False  # bytes the parser already holds
        try:
            data = conn.sock.recv(_PEEK_BYTES, socket.MSG_PEEK)
        except OSError:
            return False
        found = _held_request(data)
        if found is None or found[0] <= now:
            return False
        until, head, body = found
        try:  # this request only: a pipelined next one stays for later
            taken = len(conn.sock.recv(min(len(data), head + body)))
        except OSError:
            return False
        held_early["count"] += 1
        if taken < head + body:  # a client that sends the body after the head: wait for the rest
            conn.timeout = now + self.cfg.keepalive
            self.pending_conns.append(conn)
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self._on_held_body, conn, head + body - taken, until)
            )
            return True
        self._held_waiting.append((now + self._held_delay, conn, until))
        return True

    def _on_held_body(self, conn: Any, missing: int, until: float, sock: Any) -> None:
        """More of a held request's body arrived: take it; once all here, its answer waits for the delay."""
        try:
            got = len(sock.recv(missing))
        except BlockingIOError:
            return
        except OSError:
            got = 0
        self.poller.unregister(sock)
        self.pending_conns.remove(conn)
        if got == 0:  # closed by the client
            self.nr_conns -= 1
            conn.close()
        elif got < missing:
            self.pending_conns.append(conn)
            self.poller.register(sock, selectors.EVENT_READ, partial(self._on_held_body, conn, missing - got, until))
        else:
            self._held_waiting.append((time.monotonic() + self._held_delay, conn, until))

    def _answer_held(self) -> None:
        """Answer the held requests whose delay is over; their connections wait for the next request."""
        now = time.monotonic()
        while self._held_waiting and self._held_waiting[0][0] <= now:
            _, conn, until = self._held_waiting.popleft()
            answer = held_answer(max(1, math.ceil(until - now)))
            try:
                sent = conn.sock.send(answer)
            except OSError:
                sent = 0
            if sent < len(answer) or not self.alive:  # a client not reading its answers; or stopping
                self.nr_conns -= 1
                conn.close()
                continue
            conn.set_timeout()
            self.keepalived_conns.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))
        if now - self._pruned >= _PRUNE_EVERY:
            self._pruned = now
            # A copy, made in one step under the GIL: the application's threads note holds
            # meanwhile, and walking the dict itself then fails ("changed size during iteration").
            for key, until in held.copy().items():
                if until <= now and held.get(key, now) <= now:
                    held.pop(key, None)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self._held_waiting:
            timeout = min(timeout, max(0.0, self._held_waiting[0][0] - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)
        if self._held_waiting or held:
            self._answer_held()

    def handle(self, conn: Any) -> Any:
        with self._waiting_lock:
            self._waiting.pop(id(conn), None)
        _local.ready_at = getattr(conn, "ready_at", None)
        _local.picked_at = time.monotonic()
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        _local.environ = None
        parsed = time.monotonic()
        try:
            return super().handle_request(req, conn)
        finally:
            if self._timing is not None:
                self._record(req, parsed)

    def _record(self, req: Any, parsed: float) -> None:
        done = time.monotonic()
        environ = getattr(_local, "environ", None) or {}
        ready, picked = _local.ready_at, _local.picked_at
        status = environ.get("shop.status", "")
        self._timing.add(
            f"{time.time():.3f}\t{req.method}\t{req.path}\t{status}\t{_ms(picked, ready)}\t{_ms(parsed, picked)}"
            f"\t{_ms(environ.get(GATE_AT), parsed)}\t{_ms(done, ready)}\n"
        )

    def handle_quit(self, sig: Any, frame: Any) -> None:
        if self._timing is not None:
            self._timing.flush()
        super().handle_quit(sig, frame)

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self._timing is not None:
                self._timing.flush()

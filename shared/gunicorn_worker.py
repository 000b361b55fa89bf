"""gunicorn's gthread worker, telling the application when each request was ready for a thread.

A gthread worker's main thread reads every connection with a selector; a connection with a
request on it is handed to the thread pool's queue, and a thread takes it from there. That
queue has no bound and the application does not see it: under a drop a request can wait in
it for seconds before Django, and its admission gates, hear of it. This worker stamps each
request (``time.monotonic()``) when it was handed to the pool and puts the stamp in the
WSGI environ as ``gunicorn.ready_at``, beside ``gunicorn.picked_at`` (when a thread took
it), so the application can tell how long a request waited before it ran.

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

import os
import threading
import time
from typing import Any

from gunicorn.workers import gthread

READY_AT = "gunicorn.ready_at"
PICKED_AT = "gunicorn.picked_at"
#: Set by the application when a request reaches its admission gate (the gateway's proxy).
GATE_AT = "shop.gate_at"

_local = threading.local()


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
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
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
        conn.ready_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
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

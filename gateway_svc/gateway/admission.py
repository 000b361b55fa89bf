"""Admission control: per upstream, a bounded number of requests in flight and a bounded short wait.

A drop is an overload by design. Without a bound, every click waits in a web server's
backlog, answers take seconds, clients time out and click again, and the queue grows.
So each gateway process lets at most ``in_flight`` requests be forwarded to one service
at a time, lets at most ``queue`` more wait up to ``wait_seconds`` for one of those
places (first come, first served: a freed place is handed to the longest waiter, never
taken by a newcomer), and refuses the rest at once: 503 ``overloaded`` with a jittered
``Retry-After``. The count lives in the process (a lock and a counter, no Redis): it is
on every proxied request.

The gate only sees requests a gateway thread has picked up. Before that, a request waits
in the web server's own queue for a thread, unseen: under a drop every thread can be
holding a request that waits at a gate or on a slow service, and that queue grows by
seconds. So the web server stamps when each request was ready for a thread
(``gunicorn.ready_at``, shared/gunicorn_worker.py), and a request that waited longer than
``GATEWAY_THREAD_WAIT_SECONDS`` for one is refused the same way, as the first thing the
proxy does (:func:`waited_for_a_thread`, :func:`too_late`): an old request is answered in
a fraction of a millisecond, the queue drains, and no answer waits unboundedly.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings

from shared import gunicorn_worker
from shared.errors import ShopError


class Overloaded(ShopError):
    status_code, code, default_message = 503, "overloaded", "The shop is busy; try again in a moment."

    def __init__(self, message: str | None = None, *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


@dataclass(frozen=True)
class Bounds:
    in_flight: int
    queue: int
    wait_seconds: float


class Gate:
    """At most ``in_flight`` holders; up to ``queue`` waiters for ``wait_seconds``; the rest refused."""

    def __init__(self, name: str, bounds: Bounds):
        self.name = name
        self.bounds = bounds
        self._lock = threading.Lock()
        self._holders = 0
        self._waiters: deque[threading.Lock] = deque()
        self.refused = 0
        #: of ``refused``: requests refused before the gate, having waited too long for a thread
        self.refused_late = 0
        self.last_refused = -math.inf  # time.monotonic() of the last refusal

    def enter(self) -> bool:
        """Take a place (True), after a wait if need be, or be refused (False)."""
        with self._lock:
            if self._holders < self.bounds.in_flight and not self._waiters:
                self._holders += 1
                return True
            if len(self._waiters) >= self.bounds.queue or self.bounds.wait_seconds <= 0:
                self._refuse()
                return False
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=self.bounds.wait_seconds):
            return True  # leave() handed this waiter its place
        with self._lock:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                return True  # handed over between the timeout and this lock: the place is ours
            self._refuse()
            return False

    def leave(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()  # the place goes to the longest waiter as it is
            else:
                self._holders -= 1

    def _refuse(self) -> None:
        self.refused += 1
        self.last_refused = time.monotonic()

    def refuse_late(self) -> None:
        """Count a request for this service refused before the gate: it waited too long for a thread."""
        with self._lock:
            self.refused_late += 1
            self._refuse()

    def state(self) -> dict[str, int]:
        with self._lock:
            return {
                "in_flight": self._holders,
                "in_flight_limit": self.bounds.in_flight,
                "waiting": len(self._waiters),
                "queue_limit": self.bounds.queue,
                "refused": self.refused,
                "refused_late": self.refused_late,
            }


_gates: dict[str, Gate] = {}
_gates_lock = threading.Lock()


def gate(service: str) -> Gate:
    found = _gates.get(service)
    if found is None:
        with _gates_lock:
            found = _gates.setdefault(service, Gate(service, Bounds(*settings.GATEWAY_ADMISSION[service])))
    return found


#: Where the web server puts when a request was ready for a thread and when one took it up
#: (time.monotonic()).
READY_AT, PICKED_AT = "gunicorn.ready_at", "gunicorn.picked_at"


def waited_for_a_thread(meta: dict) -> float:
    """Seconds the request waited for a gateway thread; 0 when its web server does not say.

    From ready to taken up, not to now: a new connection is ready when accepted, and a
    client that connects ahead of its first request (a browser's preconnect) has not waited
    for a thread meanwhile."""
    ready = meta.get(READY_AT)
    if ready is None:
        return 0.0
    picked = meta.get(PICKED_AT)
    return max(0.0, (picked if picked is not None else time.monotonic()) - ready)


def too_late(waited: float) -> bool:
    """Whether a request that waited this long for a thread is refused before any work (0: never)."""
    bound = settings.GATEWAY_THREAD_WAIT_SECONDS
    return 0 < bound < waited


def retry_after() -> int:
    """Whole seconds, jittered, so the refused do not come back in one wave."""
    base = settings.GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS
    return base + random.randint(0, settings.GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS)  # noqa: S311 - not a secret


@contextmanager
def admitted(service: str) -> Iterator[None]:
    """Hold a place at the service's gate for the body of the block; Overloaded when refused."""
    g = gate(service)
    if not g.enter():
        raise Overloaded(f"The {service} service is at capacity; try again in a moment.", retry_after=retry_after())
    try:
        yield
    finally:
        g.leave()


def shedding(within_seconds: float | None = None) -> dict[str, int]:
    """Services whose gate refused a request lately (this process): name -> refusals so far;
    ``gateway``: requests its web server refused before a thread took them up (main thread)."""
    window = settings.GATEWAY_SHEDDING_WINDOW_SECONDS if within_seconds is None else within_seconds
    since = time.monotonic() - window
    found = {name: g.refused for name, g in list(_gates.items()) if g.last_refused >= since}
    early = gunicorn_worker.refused_early
    if early["last"] >= since:
        found["gateway"] = early["count"]
    return found


def states() -> dict[str, dict[str, int]]:
    """Every gate of this process: places in flight and waiting, their limits, refusals so far."""
    return {service: gate(service).state() for service in settings.GATEWAY_SERVICES}


def reset() -> None:
    """Forget every gate (tests change the bounds with settings)."""
    with _gates_lock:
        _gates.clear()

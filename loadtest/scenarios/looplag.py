"""How late the load generator's own loop runs: a delay inside every latency it reports.

Locust runs all of a process's users as greenlets on one loop. An answer that arrives while
the loop is busy (its other users, its garbage collector, or a core the stack holds) waits
until the loop gets to it, and only then is timed. A greenlet that asks to sleep ``TICK``
and notes how much later it woke measures that wait; ``run.py`` puts its percentiles in the
run's summary (``load_generator.loop_lag_ms``) beside the latencies it qualifies.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import gevent

TICK = 0.01


class LoopLag:
    """The samples of one process: (wall clock, seconds woken late)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._greenlet: gevent.Greenlet | None = None

    def watch(self, clock: Callable[[], float] = time.time) -> None:
        while True:
            asked = time.perf_counter()
            gevent.sleep(TICK)
            self.samples.append((clock(), max(0.0, time.perf_counter() - asked - TICK)))

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self.watch)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def write(self, folder: Path) -> Path:
        path = Path(folder) / f"loop-lag-{os.getpid()}.json"
        path.write_text(json.dumps(self.samples))
        return path

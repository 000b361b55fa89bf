"""A drop's opening: the users waiting for it are let go at once, in a random order.

Each user sleeping until the sale start on a timer of its own is let go in the order its
timer fires, and that order follows the order the users were spawned in: locust spawns a
fixed-count class (the fairness drop's hammerers) before the weighted ones, and the loop
then sends the first clicks one after another for the best part of a second. In a fairness
drop the hammerers' first clicks went out ahead of the polite buyers' (median 0.15 s
against 0.49 s after the first one), a head start no client of the shop would have. So the
users of a process wait for their moment here, and one timer lets them all go, shuffled.
"""

from __future__ import annotations

import random
import time

import gevent
from gevent.event import Event


class Opening:
    """Users waiting for a moment (wall clock), released together at it in a random order."""

    def __init__(self) -> None:
        self._waiting: dict[float, list[Event]] = {}

    def wait(self, at: float) -> None:
        """Return at ``at`` (time.time()), or at once if it has passed."""
        if at <= time.time():
            return
        event = Event()
        waiting = self._waiting.setdefault(at, [])
        if not waiting:
            gevent.spawn(self._open, at)
        waiting.append(event)
        event.wait()

    def _open(self, at: float) -> None:
        while (left := at - time.time()) > 0:
            gevent.sleep(left)
        waiting = self._waiting.pop(at)
        random.shuffle(waiting)
        for event in waiting:  # each set schedules its waiter's wake-up, in this order
            event.set()


#: The process's opening: every user of a scenario waits on this one.
opening = Opening()

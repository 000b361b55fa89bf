"""A drop's opening: the users waiting for it are let go at once, in a random order.

Each user sleeping until the sale start on a timer of its own is let go in the order its
timer fires, and that order follows the order the users were spawned in: locust spawns a
fixed-count class (the fairness drop's hammerers) before the weighted ones, and the loop
then sends the first clicks one after another for the best part of a second. In a fairness
drop the hammerers' first clicks went out ahead of the polite buyers' (median 0.15 s
against 0.49 s after the first one), a head start no client of the shop would have. So the
users of a process wait for their moment here, and one timer lets them all go, shuffled.

Before it, a buyer loads the drop's page, as one waiting for a drop does, at a moment of
its own in the last seconds (``page_view_at``), and clicks on the connection the page left
open, well within the gateway's keep-alive. Without the page (``loadtest drop
--cold-opening``) every first click opens a connection in the opening's instant: one
process's loop then starts thousands of connects before it sends the first request, and
the gateway's main threads accept them all, which no buyer's browser would add to its
click. The page views are not answers of the sale: the run's final totals leave them out
(``sale_total``).
"""

from __future__ import annotations

import random
import time
from typing import Any

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


#: The name of a request sent before the sale opened (a buyer loading the drop's page) holds
#: this, before any outcome label (``[overloaded]``).
BEFORE_THE_OPENING = " (before the opening)"
#: A buyer loads the drop's page at a random moment this many seconds before it opens.
PAGE_VIEW_SECONDS_BEFORE = (1.0, 4.0)


def page_view_at(opens: float, *, now: float, rng: random.Random | Any = random) -> float | None:
    """When a buyer waiting for the drop opening at ``opens`` loads its page (wall clock):
    a random moment in the window above, or None when it has passed (the buyer came late,
    and its first click opens its connection)."""
    at = opens - rng.uniform(*PAGE_VIEW_SECONDS_BEFORE)
    return at if at > now else None


def sale_total(stats: Any) -> Any:
    """The sale's answers: locust's per-request entries summed, but for the requests named as
    sent before the opening. The same kind of entry as ``stats.total`` (locust's "Aggregated")."""
    total = type(stats.total)(stats, "Aggregated", None)
    for entry in stats.entries.values():
        if BEFORE_THE_OPENING not in entry.name:
            total.extend(entry)
    return total

"""drop --fairness: polite buyers and hammerers race in the same drop; who wins how often.

- polite buyers (``PoliteBuyer``): the drop's buyers. They click, and on a refusal wait
  what ``Retry-After`` says; after a sold-out size they think a moment and try another.
- hammerers (``Hammerer``): each hammering member clicks every ``interval`` (50 ms) from
  ``connections`` (3) connections at once, and ignores ``Retry-After``.

``run.py`` prepares distinct members for both (the first ``polite`` of the data's members
are polite, the next ``hammerers`` hammer) and computes each population's win rate from
the order database: members with an order for the drop, over the population's members.
Requests are named by population: ``POST /orders/add (polite) [won]``.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any

import drop
from common import data
from locust import constant_pacing

_fairness = data()["fairness"]
_counters = {"polite": itertools.count(), "hammerer": itertools.count()}
_lock = threading.Lock()
#: members (by id) of this process whose hammering is over: one connection won, or hit the limit
_hammering_done: set[int] = set()


def _member(population: str, first: int, size: int, per_member: int, environment: Any) -> dict[str, Any]:
    """Member ``first + k`` for the k-th user of a population (``per_member`` users share one member).

    Worker w of P processes takes the population's members w, w+P, ... so processes never share one.
    """
    processes = max(1, int(os.environ.get("LOADTEST_PROCESSES", "1")))
    worker = max(0, getattr(environment.runner, "worker_index", 0) or 0)
    with _lock:
        n = next(_counters[population])
    k = (worker + processes * (n // per_member)) % size
    return dict(data()["members"][first + k])


class PoliteBuyer(drop.Buyer):
    population = " (polite)"
    weight = 1

    def pick_member(self) -> dict[str, Any]:
        return _member("polite", 0, _fairness["polite"], 1, self.environment)


class Hammerer(drop.Buyer):
    population = " (hammerer)"
    fixed_count = int(_fairness["hammerer_users"])

    def pick_member(self) -> dict[str, Any]:
        return _member(
            "hammerer", _fairness["polite"], _fairness["hammerers"], _fairness["connections"], self.environment
        )

    def on_start(self) -> None:
        self._clicks = constant_pacing(float(_fairness["interval"]))
        super().on_start()

    def wait_time(self) -> float:
        self.hold = None  # Retry-After ignored: the next click comes on the bot's own clock
        return self._clicks(self)

    @property
    def done(self) -> bool:
        return self.member["member_id"] in _hammering_done

    @done.setter
    def done(self, value: bool) -> None:
        if value:
            _hammering_done.add(self.member["member_id"])

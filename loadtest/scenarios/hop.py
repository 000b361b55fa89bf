"""hop: the price of the gateway, a pass-through read through it and the same read straight at the service.

The routes run in the same locust run, interleaved by every user, so they share the
same machine load: the difference of their latencies (and of the throughput each gets)
is the cost of the gateway's hop (token-free route: routing, header handling, the
upstream pool). The direct route is the catalog's own public ``GET /cloth/detail/{id}``.

The gateway repeats the catalog's cached answers itself, with no hop (gateway/answers.py),
so a read as buyers send it is often answered faster through the gateway than straight
from the catalog. The hop is priced on reads the gateway must forward: they carry an
``Idempotency-Key``, which the gateway never answers from what it repeats (the catalog
ignores it on a read). The reads as buyers send them are a third route of their own.

Unpaced, the users can fill the gateway's gate to the catalog: its refusals (503
``overloaded``, 429 ``rate_limited``) are answers reported under their own names, not
failures, and the user waits what ``Retry-After`` says, as the API asks.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from common import REFUSALS, WaitsAsTold, data, judge, pacing, retry_after
from locust import FastHttpUser, constant, task


class Hopper(WaitsAsTold, FastHttpUser):
    concurrency = 1

    def on_start(self) -> None:
        d = data()
        self._pace = pacing(d, constant(0))
        self.clothes: list[int] = d["clothes"]
        self.direct = d["direct_url"].rstrip("/")

    @task
    def forwarded_by_gateway(self) -> None:
        with self.client.get(
            f"/cloth/detail/{random.choice(self.clothes)}",
            headers={"Idempotency-Key": uuid.uuid4().hex},
            name="gateway, forwarded GET /cloth/detail/{id}",
            catch_response=True,
        ) as resp:
            self._judge(resp)

    @task
    def through_gateway(self) -> None:
        with self.client.get(
            f"/cloth/detail/{random.choice(self.clothes)}", name="gateway GET /cloth/detail/{id}", catch_response=True
        ) as resp:
            self._judge(resp)

    @task
    def direct(self) -> None:
        with self.client.get(
            f"{self.direct}/cloth/detail/{random.choice(self.clothes)}",
            name="direct GET /cloth/detail/{id}",
            catch_response=True,
        ) as resp:
            judge(resp, ok=(200,))

    def _judge(self, resp: Any) -> None:
        """A gateway route's answer: a refusal is a labelled answer, and the user then waits as told."""
        if judge(resp, ok=(200,), expected=REFUSALS) in REFUSALS.values():
            self.hold = retry_after(resp)

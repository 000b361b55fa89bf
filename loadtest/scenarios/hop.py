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
"""

from __future__ import annotations

import random
import uuid

from common import data, judge, pacing
from locust import FastHttpUser, constant, task


class Hopper(FastHttpUser):
    concurrency = 1

    def wait_time(self) -> float:
        return self._pace(self)

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
            judge(resp, ok=(200,))

    @task
    def through_gateway(self) -> None:
        with self.client.get(
            f"/cloth/detail/{random.choice(self.clothes)}", name="gateway GET /cloth/detail/{id}", catch_response=True
        ) as resp:
            judge(resp, ok=(200,))

    @task
    def direct(self) -> None:
        with self.client.get(
            f"{self.direct}/cloth/detail/{random.choice(self.clothes)}",
            name="direct GET /cloth/detail/{id}",
            catch_response=True,
        ) as resp:
            judge(resp, ok=(200,))

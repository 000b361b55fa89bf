"""browse: the catalog's public reads only (list pages and details), as fast as users can go.

No pacing by default: each user sends its next request as soon as the last one is
answered, so the figure is the throughput the read path sustains. ``--rate`` paces the
users instead. Run through the gateway, or straight at the catalog (``run.py browse
--compare-cache`` does both cache settings on a private catalog process).
"""

from __future__ import annotations

import random

from common import data, judge, pacing
from locust import FastHttpUser, constant, task

LIST_QUERIES = [
    "",
    "?sort=price",
    "?sort=-price",
    "?in_stock=true",
    "?on_sale=true",
    "?page_size=10",
    "?page=2&page_size=2",
]


class Browser(FastHttpUser):
    concurrency = 1

    def wait_time(self) -> float:
        return self._pace(self)

    def on_start(self) -> None:
        d = data()
        self._pace = pacing(d, constant(0))
        self.clothes: list[int] = d["clothes"]

    @task(1)
    def cloth_list(self) -> None:
        with self.client.get(
            f"/cloth/list{random.choice(LIST_QUERIES)}", name="GET /cloth/list", catch_response=True
        ) as resp:
            judge(resp, ok=(200,))

    @task(2)
    def cloth_detail(self) -> None:
        with self.client.get(
            f"/cloth/detail/{random.choice(self.clothes)}", name="GET /cloth/detail/{id}", catch_response=True
        ) as resp:
            judge(resp, ok=(200,))

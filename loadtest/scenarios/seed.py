"""seed: the original's workload, a shop's mix at a steady rate (500 requests/s for 60 s).

Every task sends exactly one request and each user is paced with ``constant_throughput``
(rate / users), so the offered load is the ``--rate`` asked for, whatever the latency (as
long as the users keep up). The mix: browsing (list, detail) most of the time, then
placing orders on a cloth with ample stock, opening and completing their payments, and
now and then a token refresh or a fresh login on another device.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from common import REFUSALS, auth, data, judge, member_for, refresh_member, token_expired
from locust import FastHttpUser, constant_throughput, task

CARD_OK = "4242424242424242"


def _pacing() -> float:
    d = data()
    return float(d["rate"]) / max(1, int(d["users"]))


class Shopper(FastHttpUser):
    # One keep-alive connection per user, like a browser tab.
    concurrency = 1

    def wait_time(self) -> float:
        return self._pace(self)

    def on_start(self) -> None:
        self._pace = constant_throughput(_pacing())
        self.member: dict[str, Any] = member_for(self.environment)
        self.clothes: list[int] = data()["clothes"]
        self.variants: list[int] = data()["seed"]["variant_ids"]
        self.unpaid: list[int] = []  # placed, no payment opened yet
        self.open: list[int] = []  # payment opened, not completed yet

    # ---------------------------------------------------------------- browsing

    @task(35)
    def cloth_list(self) -> None:
        params = random.choice(["", "?sort=price", "?sort=-price", "?in_stock=true", "?page_size=10"])
        with self.client.get(f"/cloth/list{params}", name="GET /cloth/list", catch_response=True) as resp:
            judge(resp, ok=(200,), expected=REFUSALS)

    @task(35)
    def cloth_detail(self) -> None:
        cloth_id = random.choice(self.clothes)
        with self.client.get(f"/cloth/detail/{cloth_id}", name="GET /cloth/detail/{id}", catch_response=True) as resp:
            judge(resp, ok=(200,), expected=REFUSALS)

    # ---------------------------------------------------------------- buying

    @task(8)
    def place_order(self) -> None:
        body = {"lines": [{"variant_id": random.choice(self.variants), "quantity": 1}]}
        headers = {**auth(self.member["access_token"]), "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            "/orders/add", json=body, headers=headers, name="POST /orders/add", catch_response=True
        ) as resp:
            if self._expired(resp):
                return
            if judge(resp, ok=(201,), expected={(409, "sold_out"): "sold_out", **REFUSALS}) == "":
                self.unpaid.append(resp.json()["order_id"])

    @task(8)
    def open_payment(self) -> None:
        if not self.unpaid:
            return self.cloth_list()
        order_id = self.unpaid.pop(0)
        with self.client.post(
            "/payment",
            json={"order_id": order_id},
            headers=auth(self.member["access_token"]),
            name="POST /payment",
            catch_response=True,
        ) as resp:
            if self._expired(resp):
                return
            outcome = judge(resp, ok=(200, 201), expected=REFUSALS)
            if outcome == "":
                self.open.append(order_id)
            elif outcome in REFUSALS.values():
                self.unpaid.append(order_id)  # refused before any work: the next turn asks again

    @task(8)
    def complete_payment(self) -> None:
        if not self.open:
            return self.cloth_detail()
        order_id = self.open.pop(0)
        with self.client.put(
            f"/payment/{order_id}",
            json={"card_number": CARD_OK},
            headers=auth(self.member["access_token"]),
            name="PUT /payment/{order_id}",
            catch_response=True,
        ) as resp:
            if self._expired(resp):
                return
            if judge(resp, ok=(200,), expected=REFUSALS) in REFUSALS.values():
                self.open.append(order_id)  # refused before any work: the next turn asks again

    # ---------------------------------------------------------------- sessions

    @task(4)
    def refresh(self) -> None:
        self._refresh()

    @task(2)
    def login(self) -> None:
        """A login on another device: a new session (Argon2 check), not kept by this user."""
        body = {
            "email": self.member["email"],
            "password": self.member["password"],
            "device_name": f"loadtest-{uuid.uuid4().hex[:6]}",
        }
        with self.client.post("/member/login", json=body, name="POST /member/login", catch_response=True) as resp:
            judge(resp, ok=(200,), expected=REFUSALS)

    # ---------------------------------------------------------------- helpers

    def _refresh(self) -> bool:
        return refresh_member(self.client, self.member)

    def _expired(self, resp: Any) -> bool:
        if token_expired(resp):
            self._refresh()
            return True
        return False

"""drop: thousands of logged-in buyers race for a few hundred units the moment a sale opens.

``run.py`` creates the drop with the operator command (sale start a few seconds after the
users are spawned, limit 1 per member) and logs the buyers in before the clock starts.
Each buyer waits for ``sale_starts_at`` and clicks "buy" (``POST /orders/add``, one unit
of a size drawn by stock). A winner then pays (``POST /payment``, ``PUT /payment/{id}``
with a good test card), cancels, or walks away and lets the payment deadline pass, in the
shares ``run.py`` was given, and stops. A loser keeps clicking other sizes, then keeps
refreshing the sold-out answer until the run ends: that is the sold-out path, which
must stay cheap. Sold-out and limit answers (409) are results, reported under their own
names, not failures.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from typing import Any

import gevent
from common import auth, data, judge, member_for, pacing, refresh_member, token_expired
from locust import FastHttpUser, between, task

CARD_OK = "4242424242424242"
EXPECTED = {
    (409, "sold_out"): "sold_out",
    (409, "limit_exceeded"): "limit_exceeded",
    (409, "not_on_sale"): "not_on_sale",
}


def _sale_start() -> float:
    raw = data()["drop"]["sale_starts_at"]
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()


class Buyer(FastHttpUser):
    concurrency = 1

    def wait_time(self) -> float:
        return self._pace(self)

    def on_start(self) -> None:
        d = data()
        self._pace = pacing(d, between(*d["retry_wait"]))
        self.member: dict[str, Any] = member_for(self.environment)
        variants = d["drop"]["variants"]
        self.candidates: list[int] = [v["variant_id"] for v in variants]
        self.weights: list[int] = [max(1, v["stock"]) for v in variants]
        self.all_variants = list(self.candidates)
        self.done = False
        self.fate = random.choices(
            ["pay", "cancel", "lapse"], weights=[d["pay_share"], d["cancel_share"], d["lapse_share"]]
        )[0]
        wait = _sale_start() - time.time()
        if wait > 0:
            gevent.sleep(wait)

    @task
    def buy(self) -> None:
        if self.done:
            gevent.sleep(1.0)
            return
        if self.candidates:
            variant = random.choices(self.candidates, weights=self.weights)[0]
        else:
            variant = random.choice(self.all_variants)  # everything is gone: refreshing the sold-out answer
        body = {"lines": [{"variant_id": variant, "quantity": 1}]}
        headers = {**auth(self.member["access_token"]), "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            "/orders/add", json=body, headers=headers, name="POST /orders/add", catch_response=True
        ) as resp:
            if token_expired(resp):
                refresh_member(self.client, self.member)
                return
            outcome = judge(resp, ok=(201,), expected=EXPECTED)
            if outcome == "":
                resp.request_meta["name"] = "POST /orders/add [won]"
                order_id = resp.json()["order_id"]
        if outcome == "":
            self.done = True
            self._after_winning(order_id)
        elif outcome == "sold_out" and variant in self.candidates:
            i = self.candidates.index(variant)
            del self.candidates[i], self.weights[i]
        elif outcome == "limit_exceeded":
            self.done = True  # another device of this member won

    def _after_winning(self, order_id: int) -> None:
        token = self.member["access_token"]
        if self.fate == "cancel":
            with self.client.put(
                "/orders/cancel",
                json={"order_id": order_id},
                headers=auth(token),
                name="PUT /orders/cancel",
                catch_response=True,
            ) as resp:
                judge(resp, ok=(200,))
            return
        if self.fate == "lapse":
            return
        with self.client.post(
            "/payment", json={"order_id": order_id}, headers=auth(token), name="POST /payment", catch_response=True
        ) as resp:
            if judge(resp, ok=(200, 201)) != "":
                return
        with self.client.put(
            f"/payment/{order_id}",
            json={"card_number": CARD_OK},
            headers=auth(token),
            name="PUT /payment/{order_id}",
            catch_response=True,
        ) as resp:
            judge(resp, ok=(200,))

"""drop: thousands of logged-in buyers race for a few hundred units the moment a sale opens.

``run.py`` creates the drop with the operator command (sale start a few seconds after the
users are spawned, limit 1 per member) and logs the buyers in before the clock starts.
Each buyer loads the drop's page (``GET /cloth/detail/{id}``) in the last seconds before
it opens (not with ``--cold-opening``; see ``opening.py``), waits for ``sale_starts_at``
and clicks "buy" (``POST /orders/add``, one unit of a size drawn by stock). A winner then
pays (``POST /payment``, ``PUT /payment/{id}`` with a good test card), cancels, or walks
away and lets the payment deadline pass, in the shares ``run.py`` was given, and stops. A
loser keeps clicking other sizes, then keeps refreshing the sold-out answer until the run
ends: that is the sold-out path, which must stay cheap. Sold-out and limit answers (409)
are results, reported under their own names, not failures; so are the gateway's refusals
(503 ``overloaded``, 429 ``rate_limited``), after which the buyer waits what
``Retry-After`` says before clicking again, as the API asks.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from typing import Any

import gevent
from common import (
    REFUSALS,
    WaitsAsTold,
    auth,
    data,
    judge,
    member_for,
    pacing,
    refresh_member,
    retry_after,
    token_expired,
)
from locust import FastHttpUser, between, task
from opening import BEFORE_THE_OPENING, opening, page_view_at

CARD_OK = "4242424242424242"
EXPECTED = {
    (409, "sold_out"): "sold_out",
    (409, "limit_exceeded"): "limit_exceeded",
    (409, "not_on_sale"): "not_on_sale",
    **REFUSALS,
}


def _sale_start() -> float:
    raw = data()["drop"]["sale_starts_at"]
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()


class Buyer(WaitsAsTold, FastHttpUser):
    concurrency = 1
    #: appended to the order request's name, so populations of one run are told apart
    population = ""

    def pick_member(self) -> dict[str, Any]:
        return member_for(self.environment)

    def on_start(self) -> None:
        d = data()
        self._pace = pacing(d, between(*d["retry_wait"]))
        self.member: dict[str, Any] = self.pick_member()
        variants = d["drop"]["variants"]
        self.candidates: list[int] = [v["variant_id"] for v in variants]
        self.weights: list[int] = [max(1, v["stock"]) for v in variants]
        self.all_variants = list(self.candidates)
        self.done = False
        self.fate = random.choices(
            ["pay", "cancel", "lapse"], weights=[d["pay_share"], d["cancel_share"], d["lapse_share"]]
        )[0]
        self._view_page(d["drop"])
        opening.wait(_sale_start())  # with every other buyer of this process, in a random order

    def _view_page(self, drop: dict[str, Any]) -> None:
        """Load the drop's page at a moment of this buyer's own just before it opens; the
        first click then goes on the connection the page left open, as a browser's does."""
        at = None if drop.get("cold_opening") else page_view_at(_sale_start(), now=time.time())
        if at is None:
            return
        gevent.sleep(max(0.0, at - time.time()))
        with self.client.get(
            f"/cloth/detail/{drop['cloth_id']}",
            name=f"GET /cloth/detail/{{id}}{BEFORE_THE_OPENING}",
            catch_response=True,
        ) as resp:
            judge(resp, ok=(200,), expected=REFUSALS)  # a refused page load: the click comes all the same

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
            "/orders/add",
            json=body,
            headers=headers,
            name=f"POST /orders/add{self.population}",
            catch_response=True,
            context={"member": self.member["member_id"]},  # for --request-log
        ) as resp:
            if token_expired(resp):
                refresh_member(self.client, self.member)
                return
            outcome = judge(resp, ok=(201,), expected=EXPECTED)
            if outcome in REFUSALS.values():
                self.hold = retry_after(resp)
            if outcome == "":
                resp.request_meta["name"] = f"POST /orders/add{self.population} [won]"
                order_id = resp.json()["order_id"]
        if outcome == "":
            self.done = True
            self._after_winning(order_id)
        elif outcome == "sold_out" and variant in self.candidates:
            i = self.candidates.index(variant)
            del self.candidates[i], self.weights[i]
        elif outcome == "limit_exceeded":
            self.done = True  # another device of this member won

    def _call(self, method: str, path: str, *, name: str, ok: tuple[int, ...], body: dict) -> bool:
        """One request of the winner's follow-up; a refusal is tried again after its Retry-After (a few times)."""
        for _ in range(5):
            with self.client.request(
                method, path, json=body, headers=auth(self.member["access_token"]), name=name, catch_response=True
            ) as resp:
                outcome = judge(resp, ok=ok, expected=REFUSALS)
                wait = retry_after(resp)
            if outcome not in REFUSALS.values():
                return outcome == ""
            gevent.sleep(wait)
        return False

    def _after_winning(self, order_id: int) -> None:
        if self.fate == "cancel":
            self._call("PUT", "/orders/cancel", name="PUT /orders/cancel", ok=(200,), body={"order_id": order_id})
            return
        if self.fate == "lapse":
            return
        if self._call("POST", "/payment", name="POST /payment", ok=(200, 201), body={"order_id": order_id}):
            self._call(
                "PUT", f"/payment/{order_id}", name="PUT /payment/{order_id}", ok=(200,), body={"card_number": CARD_OK}
            )

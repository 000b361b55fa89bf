"""Property: any sequence of reserve/release/sell/return/restock/correct keeps every invariant."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from inventory import gate, selectors, services
from inventory.models import ClothRule, Reservation, StockItem, StockMovement
from shared.errors import ShopError
from shared.messaging.models import OutboxEvent
from shared.redis import get_redis

VARIANTS = {11: 1, 12: 1, 21: 2}


class StockMachine(RuleBasedStateMachine):
    @initialize()
    def fresh(self):
        for model in (Reservation, StockMovement, StockItem, ClothRule, OutboxEvent):
            model.objects.all().delete()
        get_redis().flushdb()
        selectors.forget_cached_variants()
        services.register_stock(
            cloth_id=1,
            sale_starts_at=None,
            purchase_limit=3,
            variants=[{"variant_id": 11, "stock": 3}, {"variant_id": 12, "stock": 2}],
        )
        services.register_stock(
            cloth_id=2, sale_starts_at=None, purchase_limit=0, variants=[{"variant_id": 21, "stock": 2}]
        )
        self.next_order = 1
        self.orders: list[int] = []

    @rule(
        member=st.integers(1, 3),
        lines=st.dictionaries(st.sampled_from(sorted(VARIANTS)), st.integers(1, 2), min_size=1, max_size=3),
    )
    def reserve(self, member, lines):
        order_id = self.next_order
        self.next_order += 1
        self.orders.append(order_id)
        try:
            services.reserve_stock(
                order_id=order_id, member_id=member, lines=[{"variant_id": v, "quantity": q} for v, q in lines.items()]
            )
        except ShopError:
            pass

    @rule(data=st.data(), op=st.sampled_from(["release", "sell", "return", "retry"]))
    def act_on_order(self, data, op):
        if not self.orders:
            return
        order_id = data.draw(st.sampled_from(self.orders))
        try:
            if op == "release":
                services.release_reservation(order_id=order_id, reason="test")
            elif op == "sell":
                services.sell_reservation(order_id=order_id)
            elif op == "return":
                services.return_reservation(order_id=order_id)
            else:
                services.reserve_stock(order_id=order_id, member_id=1, lines=[{"variant_id": 11, "quantity": 1}])
        except ShopError:
            pass

    @rule(variant=st.sampled_from(sorted(VARIANTS)), delta=st.integers(-2, 3))
    def restock_or_correct(self, variant, delta):
        try:
            if delta > 0:
                services.restock(variant_id=variant, quantity=delta, reason="test")
            elif delta < 0:
                services.correct_stock(variant_id=variant, delta=delta, reason="test")
        except ShopError:
            pass

    @rule()
    def lose_redis(self):
        get_redis().flushdb()

    @invariant()
    def stock_adds_up_everywhere(self):
        if not hasattr(self, "orders"):
            return
        _, diffs = selectors.invariant_differences(with_gate=True)
        assert diffs == []
        for cloth_id in (1, 2):
            snap = gate.snapshot(cloth_id)
            if snap["loaded"]:
                assert all(n >= 0 for n in snap["avail"].values())


@pytest.mark.django_db(transaction=True)
def test_stock_invariants_hold_for_any_sequence(redis_db):
    StockMachine.TestCase.settings = settings(
        max_examples=int(os.environ.get("STOCK_PROPERTY_EXAMPLES", "25")),
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    StockMachine.TestCase().runTest()

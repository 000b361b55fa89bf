"""Whatever order the saga's messages and the member's clicks arrive in, the order stays sane."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders import services
from orders.models import ALLOWED_TRANSITIONS, Order
from orders.tests.conftest import make_event
from shared.errors import IllegalTransition
from shared.messaging.handlers import apply_event
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db

STEPS = ["paid_1", "paid_2", "failed", "refunded_1", "refunded_2", "cancel", "refund", "expire", "sell_failed"]


def _run(order_id: int, step: str) -> None:
    base = {"order_id": order_id, "member_id": 1}
    try:
        if step.startswith("paid_"):
            apply_event(
                "order", make_event("PaymentCompleted", {**base, "payment_id": int(step[-1]), "amount": "59000.00"})
            )
        elif step == "failed":
            apply_event("order", make_event("PaymentFailed", {**base, "payment_id": 1, "reason": "declined"}))
        elif step.startswith("refunded_"):
            apply_event("order", make_event("PaymentRefunded", {**base, "payment_id": int(step[-1])}))
        elif step == "cancel":
            services.cancel_order(order_id=order_id, member_id=1, actor="member:1")
        elif step == "refund":
            services.request_refund(order_id=order_id, member_id=1, actor="member:1")
        elif step == "expire":
            Order.objects.filter(order_id=order_id).update(payment_deadline=timezone.now() - dt.timedelta(seconds=1))
            services.expire_overdue_orders()
        elif step == "sell_failed":
            apply_event("order", make_event("StockSellFailed", base, aggregate_type="reservation", topic="inventory"))
    except IllegalTransition:
        pass  # refused, and refusing changes nothing: checked below


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.sampled_from(STEPS), max_size=8))
def test_any_sequence_keeps_the_state_machine_and_moves_stock_and_money_at_most_once(upstreams, steps):
    upstreams.stock[101] = 10**6
    order, _ = services.place_order(member_id=1, lines=[services.LineRequest(variant_id=101, quantity=1)])
    for step in steps:
        _run(order.order_id, step)
    moves = list(order.transitions.exclude(from_status="").values_list("from_status", "to_status"))
    state = "PENDING_PAYMENT"
    for from_status, to_status in moves:
        if from_status == to_status:
            continue  # a note (late payment refunded), not a move
        assert from_status == state and to_status in ALLOWED_TRANSITIONS[from_status]
        state = to_status
    assert Order.objects.get(order_id=order.order_id).status == state
    events = list(OutboxEvent.objects.filter(aggregate_id=str(order.order_id)).values_list("event_type", flat=True))
    ended = [e for e in events if e in ("OrderCancelled", "OrderExpired", "OrderPaymentFailed")]
    assert events.count("OrderPaid") <= 1 and events.count("OrderRefunded") <= 1 and len(ended) <= 1
    assert not (ended and "OrderPaid" in events), "stock both released and sold"
    if "OrderRefunded" in events:
        assert "OrderPaid" in events
    refunds = list(
        OutboxEvent.objects.filter(aggregate_id=str(order.order_id), event_type="RefundRequested").values_list(
            "payload__payment_id", flat=True
        )
    )
    assert len([p for p in refunds if p is not None]) == len({p for p in refunds if p is not None})

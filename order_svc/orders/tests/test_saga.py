"""The order's side of the saga: payment and inventory events, applied once, and expiry."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import services
from orders.models import Order, OrderStatus, OrderTransition, PaymentSentBack
from orders.tests.conftest import make_event
from shared.contracts.payment import PaymentCompleted
from shared.messaging.consumer import EventConsumer
from shared.messaging.events import record_event
from shared.messaging.handlers import apply_event, apply_events, batched
from shared.messaging.kafka import ensure_topics, reset_producer
from shared.messaging.models import OutboxEvent
from shared.messaging.publisher import publish_pending

pytestmark = pytest.mark.django_db


def _events(event_type: str) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(event_type=event_type).order_by("id"))


def _paid(order_id: int, payment_id: int = 50, amount: str = "59000.00"):
    return make_event(
        "PaymentCompleted", {"payment_id": payment_id, "order_id": order_id, "member_id": 1, "amount": amount}
    )


def test_a_transition_writes_the_order_its_transition_and_its_event_in_one_statement(place):
    """The order's new status, the transition that records it and OrderPaid: one round trip."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    order_id = place(1).json()["order_id"]
    with CaptureQueriesContext(connection) as captured:
        assert apply_event("order", _paid(order_id)) is True
    writes = [q["sql"] for q in captured.captured_queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "WITH")]
    inbox_claim, *rest = writes
    assert [sql.split()[0] for sql in rest] == ["WITH"], rest
    order = Order.objects.get()
    assert order.status == OrderStatus.PAID and order.paid_by_payment_id == 50
    assert list(order.transitions.values_list("to_status", flat=True).order_by("id")) == ["PENDING_PAYMENT", "PAID"]
    assert len(_events("OrderPaid")) == 1


@pytest.mark.django_db(transaction=True)  # as in the consumer: no test's transaction around it
def test_a_polls_payments_are_applied_in_one_transaction_each_as_on_its_own(place):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # the consumer hands a poll's events of such types to apply_events together
    assert batched("PaymentCompleted") and batched("PaymentFailed")

    order_ids = [place(n).json()["order_id"] for n in (1, 2, 3)]
    late = order_ids[2]
    services.cancel_order(order_id=late, member_id=3, actor="member:3")
    events = [_paid(order_ids[0], 51), _paid(order_ids[1], 52), _paid(late, 53), _paid(order_ids[0], 51)]
    with CaptureQueriesContext(connection) as captured:
        assert apply_events("order", events) == 4
    statements = [q["sql"].split()[0] for q in captured.captured_queries]
    assert statements.count("BEGIN") == 1 and statements.count("COMMIT") == 1, statements
    assert [Order.objects.get(order_id=o).status for o in order_ids] == ["PAID", "PAID", "CANCELLED"]
    assert [e.payload["payment_id"] for e in _events("OrderPaid")] == [51, 52]  # the same payment twice: once
    assert [e.payload["order_id"] for e in _events("RefundRequested")] == [late]  # paid after its cancel


def test_payment_completed_makes_the_order_paid_once(place):
    order_id = place(1).json()["order_id"]
    event = _paid(order_id)
    assert apply_event("order", event) is True
    assert apply_event("order", event) is False  # redelivered: no change
    assert Order.objects.get().status == OrderStatus.PAID
    paid = _events("OrderPaid")
    assert len(paid) == 1
    assert paid[0].payload["payment_id"] == 50 and paid[0].payload["lines"][0]["quantity"] == 1
    assert OrderTransition.objects.filter(to_status="PAID", event_id=event.event_id).count() == 1


def test_same_payment_announced_twice_with_new_event_ids_changes_nothing(place):
    order_id = place(1).json()["order_id"]
    apply_event("order", _paid(order_id))
    apply_event("order", _paid(order_id))
    assert len(_events("OrderPaid")) == 1 and not _events("RefundRequested")


def test_late_payment_for_an_expired_order_is_sent_back_and_no_stock_moves(place):
    order_id = place(1).json()["order_id"]
    services.expire_overdue_orders(now=timezone.now() + dt.timedelta(hours=1))
    apply_event("order", _paid(order_id, payment_id=77))
    assert Order.objects.get().status == OrderStatus.EXPIRED
    refund = _events("RefundRequested")
    assert len(refund) == 1
    assert refund[0].payload == {
        "order_id": order_id,
        "member_id": 1,
        "payment_id": 77,
        "amount": "59000.00",
        "reason": "late_payment",
    }
    assert not _events("OrderPaid")
    apply_event("order", make_event("PaymentRefunded", {"payment_id": 77, "order_id": order_id, "member_id": 1}))
    assert Order.objects.get().status == OrderStatus.EXPIRED and not _events("OrderRefunded")


def test_second_payment_for_a_paid_order_is_sent_back(place):
    order_id = place(1).json()["order_id"]
    apply_event("order", _paid(order_id, payment_id=1))
    apply_event("order", _paid(order_id, payment_id=2))
    assert Order.objects.get().status == OrderStatus.PAID
    assert [e.payload["reason"] for e in _events("RefundRequested")] == ["duplicate_payment"]


def test_the_order_names_the_payment_that_paid_it_and_each_payment_it_sent_back(place):
    order_id = place(1).json()["order_id"]
    apply_event("order", _paid(order_id, payment_id=1))
    apply_event("order", _paid(order_id, payment_id=2))
    apply_event("order", _paid(order_id, payment_id=2))  # announced again under a new event id
    assert Order.objects.get().paid_by_payment_id == 1
    assert list(PaymentSentBack.objects.values_list("order_id", "payment_id", "reason")) == [
        (order_id, 2, "duplicate_payment")
    ]
    assert len(_events("RefundRequested")) == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentSentBack.objects.create(order_id=order_id, payment_id=2, reason="late_payment")


def test_payments_are_told_apart_by_their_ids_not_by_the_transitions_text(place):
    order_id = place(1).json()["order_id"]
    apply_event("order", _paid(order_id, payment_id=1))
    apply_event("order", _paid(order_id, payment_id=2))
    OrderTransition.objects.update(actor="admin:someone", cause="edited")  # the audit trail says nothing now
    apply_event("order", _paid(order_id, payment_id=1))
    apply_event("order", _paid(order_id, payment_id=2))
    assert len(_events("OrderPaid")) == 1
    assert [e.payload["payment_id"] for e in _events("RefundRequested")] == [2]


def test_payment_failed_ends_the_order_and_announces_the_release(place):
    order_id = place(1).json()["order_id"]
    apply_event(
        "order",
        make_event("PaymentFailed", {"payment_id": 5, "order_id": order_id, "member_id": 1, "reason": "declined"}),
    )
    assert Order.objects.get().status == OrderStatus.PAYMENT_FAILED
    (event,) = _events("OrderPaymentFailed")
    assert event.payload["lines"][0]["variant_id"] == 101


def test_payment_failed_after_paid_changes_nothing(place):
    order_id = place(1).json()["order_id"]
    apply_event("order", _paid(order_id))
    apply_event("order", make_event("PaymentFailed", {"payment_id": 9, "order_id": order_id, "member_id": 1}))
    assert Order.objects.get().status == OrderStatus.PAID and not _events("OrderPaymentFailed")


def test_refund_completes_and_stock_is_returned(place, member_client):
    order_id = place(1).json()["order_id"]
    apply_event("order", _paid(order_id, payment_id=8))
    assert member_client(1).put("/orders/refund", {"order_id": order_id}, format="json").status_code == 202
    refunded = make_event("PaymentRefunded", {"payment_id": 8, "order_id": order_id, "member_id": 1})
    apply_event("order", refunded)
    apply_event("order", refunded)
    assert Order.objects.get().status == OrderStatus.REFUNDED
    (event,) = _events("OrderRefunded")
    assert event.payload["restock"] is True and event.payload["lines"][0]["variant_id"] == 101


def test_stock_sell_failed_refunds_without_returning_stock(place):
    order_id = place(1).json()["order_id"]
    apply_event("order", _paid(order_id, payment_id=8))
    apply_event(
        "order", make_event("StockSellFailed", {"order_id": order_id}, aggregate_type="reservation", topic="inventory")
    )
    order = Order.objects.get()
    assert order.status == OrderStatus.REFUND_REQUESTED and order.refund_reason == "stock_unavailable"
    assert _events("RefundRequested")[0].payload["reason"] == "stock_unavailable"
    apply_event("order", make_event("PaymentRefunded", {"payment_id": 8, "order_id": order_id, "member_id": 1}))
    (event,) = _events("OrderRefunded")
    assert event.payload["restock"] is False


def test_event_for_an_unknown_order_is_applied_as_nothing(db):
    assert apply_event("order", _paid(123456)) is True
    assert not OutboxEvent.objects.exists()


def test_expiry_ends_only_overdue_unpaid_orders_in_batches(place):
    ids = [place(1).json()["order_id"] for _ in range(5)]
    Order.objects.filter(order_id=ids[4]).update(status=OrderStatus.PAID)
    Order.objects.filter(order_id=ids[3]).update(payment_deadline=timezone.now() + dt.timedelta(hours=2))
    assert services.expire_overdue_orders(now=timezone.now() + dt.timedelta(hours=1), batch_size=2) == 3
    statuses = dict(Order.objects.values_list("order_id", "status"))
    assert [statuses[i] for i in ids] == ["EXPIRED", "EXPIRED", "EXPIRED", "PENDING_PAYMENT", "PAID"]
    expired = _events("OrderExpired")
    assert len(expired) == 3 and all(e.payload["lines"] and e.payload["reason"] for e in expired)
    assert services.expire_overdue_orders(now=timezone.now() + dt.timedelta(hours=1)) == 0


def test_expiry_skips_rows_locked_by_someone_else(place):
    order_id = place(1).json()["order_id"]
    Order.objects.update(payment_deadline=timezone.now() - dt.timedelta(seconds=1))
    assert services.expire_overdue_orders() == 1
    assert Order.objects.get(order_id=order_id).status == OrderStatus.EXPIRED


def test_expire_orders_command_runs_the_sweep(place):
    from django.core.management import call_command

    place(1)
    Order.objects.update(payment_deadline=timezone.now() - dt.timedelta(seconds=1))
    call_command("expire_orders")
    assert Order.objects.get().status == OrderStatus.EXPIRED


@pytest.mark.django_db(transaction=True)
def test_payment_completed_over_the_real_broker_is_applied(place, settings):
    settings.KAFKA_TOPIC_PREFIX = f"test-order-{uuid.uuid4().hex[:8]}."
    reset_producer()
    order_id = place(1).json()["order_id"]
    ensure_topics(
        [f"{settings.KAFKA_TOPIC_PREFIX}{t}" for t in ("payments", "inventory", "payments.dlq", "inventory.dlq")]
    )
    with transaction.atomic():
        event = record_event(
            PaymentCompleted(payment_id=50, order_id=order_id, member_id=1, amount=Decimal("59000.00"))
        )
    OutboxEvent.objects.filter(pk=event.pk).update(topic="payments")
    assert publish_pending() >= 1
    EventConsumer(f"order-test-{uuid.uuid4().hex[:6]}").run(max_messages=1, idle_exit_seconds=20)
    assert Order.objects.get().status == OrderStatus.PAID
    reset_producer()


def test_beat_runs_the_expiry_task(place, settings):
    from orders.tasks import expire_overdue_orders

    assert settings.CELERY_BEAT_SCHEDULE["expire-overdue-orders"]["task"] == expire_overdue_orders.name
    assert "publish-outbox" in settings.CELERY_BEAT_SCHEDULE
    place(1)
    Order.objects.update(payment_deadline=timezone.now() - dt.timedelta(seconds=1))
    assert expire_overdue_orders() == 1


def test_the_orders_statuses_are_the_ones_its_events_and_other_services_name():
    from shared.contracts.order import OrderStatus as SharedOrderStatus

    assert [s.value for s in OrderStatus] == [s.value for s in SharedOrderStatus]

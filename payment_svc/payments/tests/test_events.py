"""The payment's side of the saga: refund once on RefundRequested, cancel open payments."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments.models import Payment, PaymentStatus
from payments.providers import FakeProvider
from payments.tests.conftest import make_event
from shared.messaging.handlers import apply_event, apply_events, batched
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(member_client, orders) -> Payment:
    member_client(1).post("/payment", {"order_id": 1}, format="json")
    member_client(1).put("/payment/1", {"card_number": "4242424242424242"}, format="json")
    return Payment.objects.get(status=PaymentStatus.COMPLETED)


def test_refund_requested_refunds_once(paid):
    event = make_event(
        "RefundRequested",
        {
            "order_id": 1,
            "member_id": 1,
            "payment_id": paid.payment_id,
            "amount": "59000.00",
            "reason": "member_request",
        },
    )
    assert apply_event("payment", event) is True
    assert apply_event("payment", event) is False
    # the same request under a new event id: already refunded, no second refund
    apply_event("payment", make_event("RefundRequested", {"order_id": 1, "member_id": 1, "reason": "member_request"}))
    paid.refresh_from_db()
    assert paid.status == PaymentStatus.REFUNDED and paid.refund_reference.startswith("fake_re_")
    assert FakeProvider.refunded(f"refund:{paid.idempotency_key}")
    (refunded,) = OutboxEvent.objects.filter(event_type="PaymentRefunded")
    assert refunded.payload == {
        "payment_id": paid.payment_id,
        "order_id": 1,
        "member_id": 1,
        "amount": "59000.00",
        "reason": "member_request",
    }


def test_refund_requested_without_a_charge_changes_nothing(orders):
    apply_event("payment", make_event("RefundRequested", {"order_id": 1, "member_id": 1, "reason": "late_payment"}))
    assert not OutboxEvent.objects.exists()


def test_refund_amount_is_the_charged_amount_not_the_events(paid):
    apply_event(
        "payment",
        make_event(
            "RefundRequested", {"order_id": 1, "member_id": 1, "amount": "99999999.00", "reason": "late_payment"}
        ),
    )
    assert OutboxEvent.objects.get(event_type="PaymentRefunded").payload["amount"] == "59000.00"


@pytest.mark.parametrize("event_type", ["OrderExpired", "OrderCancelled"])
def test_order_ended_cancels_the_open_payment(member_client, orders, event_type):
    member_client(1).post("/payment", {"order_id": 1}, format="json")
    apply_event("payment", make_event(event_type, {"order_id": 1, "member_id": 1, "lines": []}))
    assert Payment.objects.get().status == PaymentStatus.CANCELLED
    resp = member_client(1).put("/payment/1", {"card_number": "4242424242424242"}, format="json")
    assert resp.status_code == 409


def test_order_ended_leaves_a_completed_payment_to_the_refund_path(paid):
    apply_event("payment", make_event("OrderExpired", {"order_id": 1, "member_id": 1, "lines": []}))
    paid.refresh_from_db()
    assert paid.status == PaymentStatus.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_refund_requested_over_the_real_broker_refunds(paid, settings):
    import uuid

    from django.db import transaction

    from shared.contracts.order import RefundReason, RefundRequested
    from shared.messaging.consumer import EventConsumer
    from shared.messaging.events import record_event
    from shared.messaging.kafka import ensure_topics, reset_producer
    from shared.messaging.publisher import publish_pending

    settings.KAFKA_TOPIC_PREFIX = f"test-payment-{uuid.uuid4().hex[:8]}."
    reset_producer()
    ensure_topics([f"{settings.KAFKA_TOPIC_PREFIX}{t}" for t in ("orders", "orders.dlq")])
    OutboxEvent.objects.all().delete()
    with transaction.atomic():  # what the order service writes to its outbox
        record_event(
            RefundRequested(
                order_id=1,
                member_id=1,
                payment_id=paid.payment_id,
                amount=Decimal("59000.00"),
                reason=RefundReason.MEMBER_REQUEST,
            )
        )
    assert publish_pending() == 1
    EventConsumer(f"payment-test-{uuid.uuid4().hex[:6]}").run(max_messages=1, idle_exit_seconds=20)
    paid.refresh_from_db()
    assert paid.status == PaymentStatus.REFUNDED
    assert OutboxEvent.objects.filter(event_type="PaymentRefunded").count() == 1
    reset_producer()


def test_the_orders_status_is_kept_beside_its_payments_and_shown_in_the_admin(paid, admin_client):
    assert paid.order_status == "PENDING_PAYMENT"  # as the order service said when the payment opened
    apply_event("payment", make_event("OrderPaid", {"order_id": 1, "member_id": 1, "payment_id": paid.payment_id}))
    paid.refresh_from_db()
    assert paid.order_status == "PAID"
    page = admin_client.get("/admin/payments/payment/").content.decode()
    assert "PAID" in page and "/admin/inventory/reservation/?order_id=1" in page
    apply_event("payment", make_event("RefundRequested", {"order_id": 1, "member_id": 1, "reason": "late_payment"}))
    paid.refresh_from_db()
    assert paid.order_status == "PAID"  # money for an order that had ended does not move the order
    apply_event("payment", make_event("OrderRefunded", {"order_id": 1, "member_id": 1, "payment_id": 1}))
    paid.refresh_from_db()
    assert paid.order_status == "REFUNDED"


@pytest.mark.django_db(transaction=True)  # as in the consumer: no test's transaction around it
def test_a_polls_status_notes_are_applied_in_one_transaction_each_as_on_its_own(paid):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # the consumer hands a poll's events of such types to apply_events together
    assert batched("OrderPaid") and batched("OrderPaymentFailed") and batched("OrderRefunded")
    assert not batched("OrderCancelled")

    paid_event = make_event("OrderPaid", {"order_id": 1, "member_id": 1, "payment_id": paid.payment_id})
    refunded = make_event("OrderRefunded", {"order_id": 1, "member_id": 1, "payment_id": paid.payment_id})
    with CaptureQueriesContext(connection) as captured:
        assert apply_events("payment", [paid_event, refunded, paid_event]) == 2  # the same event twice: once
    statements = [q["sql"].split()[0] for q in captured.captured_queries]
    assert statements.count("BEGIN") == 1 and statements.count("COMMIT") == 1, statements
    paid.refresh_from_db()
    assert paid.order_status == "REFUNDED"  # in the poll's order: paid, then refunded

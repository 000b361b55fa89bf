"""The consumer loop over the real broker: an order's outcome published once, applied once."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import transaction

from inventory.models import StockMovement
from inventory.tests.conftest import counts, reserve
from shared.contracts.order import OrderPaid
from shared.messaging.consumer import EventConsumer
from shared.messaging.events import record_event
from shared.messaging.kafka import reset_producer
from shared.messaging.models import OutboxEvent
from shared.messaging.publisher import publish_pending, replay


@pytest.fixture
def fresh_topics(settings):
    settings.KAFKA_TOPIC_PREFIX = f"test-inventory-{uuid.uuid4().hex[:8]}."
    reset_producer()
    yield
    reset_producer()


def test_order_paid_from_the_broker_sells_once_even_when_replayed(cloth, fresh_topics):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    consumer = EventConsumer("inventory-broker-test", retry_delay=0.01)
    consumer.base_topics = ["orders"]  # only the topic this test feeds
    from shared.messaging.events import topic_name
    from shared.messaging.kafka import ensure_topics

    ensure_topics([topic_name("orders"), topic_name("orders.dlq")])
    with transaction.atomic():
        # Stands in for the order service's outbox row: same envelope, same topic.
        row = record_event(OrderPaid(order_id=100, member_id=7, lines=[], payment_id=1, total=Decimal("0")))
    assert publish_pending() >= 1
    assert replay(OutboxEvent.objects.filter(pk=row.pk)) == 1  # delivered twice
    consumer._unprefix = {topic_name("orders"): "orders"}
    handled = consumer.run(max_messages=2, idle_exit_seconds=20)
    assert handled == 2
    assert counts(11) == (3, 0, 2)
    assert StockMovement.objects.filter(kind="sell", order_id=100).count() == 1

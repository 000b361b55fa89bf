"""GET /health says whether the service's consumer has joined its group and gets events."""

from __future__ import annotations

import threading
import uuid

import pytest

from shared.messaging.consumer import EventConsumer
from shared.messaging.kafka import reset_producer


@pytest.fixture(autouse=True)
def own_topics(settings):
    settings.KAFKA_TOPIC_PREFIX = f"test-health-{uuid.uuid4().hex[:8]}."
    reset_producer()
    yield
    reset_producer()


@pytest.mark.django_db(transaction=True)
def test_health_says_the_consumer_is_joining_until_it_has_its_partitions(anon_client, redis_db):
    before = anon_client.get("/health").json()
    assert before["checks"]["consumer"] == "joining" and before["status"] == "degraded"

    consumer = EventConsumer(f"test-health-{uuid.uuid4().hex[:8]}")
    runner = threading.Thread(target=consumer.run, kwargs={"idle_exit_seconds": 60}, daemon=True)
    runner.start()
    try:
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            after = anon_client.get("/health").json()
            if after["checks"]["consumer"] == "ok":
                break
            time.sleep(0.2)
        assert after["checks"]["consumer"] == "ok" and after["status"] == "ok", after
    finally:
        consumer.stop()
        runner.join(timeout=30)
    # a consumer that left is no longer counted on
    assert anon_client.get("/health").json()["checks"]["consumer"] == "joining"

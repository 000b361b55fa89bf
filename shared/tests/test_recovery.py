"""A broker that came back empty is noticed by its epoch, and what it lost is published again."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from shared.messaging import recovery
from shared.messaging.events import record_event, topic_name
from shared.messaging.kafka import base_config, ensure_topics, reset_producer
from shared.messaging.models import BrokerEpoch, OutboxEvent
from shared.messaging.publisher import publish_pending
from shared.tests.parcels import ParcelPacked


@pytest.fixture(autouse=True)
def fresh(settings):
    settings.KAFKA_TOPIC_PREFIX = f"test-recovery-{uuid.uuid4().hex[:8]}."
    reset_producer()
    recovery.reset()
    yield
    reset_producer()
    recovery.reset()


def _published(parcel_id: int) -> OutboxEvent:
    with transaction.atomic():
        row = record_event(ParcelPacked(parcel_id=parcel_id))
    assert publish_pending() >= 1
    row.refresh_from_db()
    assert row.published_at is not None
    return row


def _lose_broker_data() -> None:
    """What a restart of a broker that keeps nothing on disk does to the marker: it is gone."""
    name = topic_name(recovery.MARKER_TOPIC)
    admin = AdminClient(base_config())
    admin.delete_topics([name])[name].result()


def _event_ids_on_topic(topic: str) -> list[str]:
    """Every event id on the topic, read from the start of each partition (no group join)."""
    import json

    name = topic_name(topic)
    consumer = Consumer({**base_config(), "group.id": f"read-{uuid.uuid4().hex}", "enable.auto.commit": False})
    partitions = consumer.list_topics(name, timeout=5).topics[name].partitions
    consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in partitions])
    seen: list[str] = []
    idle = 0
    while idle < 3:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            idle += 1
            continue
        idle = 0
        seen.append(json.loads(msg.value())["event_id"])
    consumer.close()
    return seen


@pytest.mark.django_db
def test_the_same_broker_is_recognised_and_nothing_is_published_again():
    first = recovery.check_broker()
    epoch = BrokerEpoch.objects.get()
    assert first == 0 and epoch.epoch
    _published(1)
    assert recovery.check_broker() == 0
    assert list(BrokerEpoch.objects.values_list("epoch", flat=True)) == [epoch.epoch]


@pytest.mark.django_db
def test_a_broker_that_lost_its_data_gets_the_recent_events_again():
    ensure_topics([topic_name("parcels")])
    assert recovery.check_broker() == 0
    before = BrokerEpoch.objects.get()
    recent = [_published(2), _published(3)]
    # Published long before this broker was first seen: consumed long ago, not sent again.
    old = _published(4)
    OutboxEvent.objects.filter(pk=old.pk).update(published_at=timezone.now() - dt.timedelta(hours=3))
    BrokerEpoch.objects.filter(pk=before.pk).update(first_seen_at=timezone.now() - dt.timedelta(hours=1))

    _lose_broker_data()
    replayed = recovery.check_broker()

    assert replayed == 2
    now_epoch = BrokerEpoch.objects.order_by("-last_seen_at").first()
    assert now_epoch.epoch != before.epoch and now_epoch.replayed == 2
    on_topic = _event_ids_on_topic("parcels")
    for row in recent:
        assert on_topic.count(str(row.event_id)) == 2  # the first publication and the replay
    assert on_topic.count(str(old.event_id)) == 1
    # the next check finds the broker it now knows: nothing is sent a third time
    assert recovery.check_broker() == 0


@pytest.mark.django_db
def test_a_replay_that_could_not_finish_is_tried_again_at_the_next_check(monkeypatch):
    assert recovery.check_broker() == 0
    before = BrokerEpoch.objects.get()
    _published(5)
    _lose_broker_data()

    def refuse(_rows):
        raise RuntimeError("replay stopped: 1 events not acknowledged by the broker")

    with monkeypatch.context() as patched:
        patched.setattr(recovery, "replay", refuse)
        assert recovery.check_broker() is None
    # still the old epoch on record: the events are owed to the new broker
    assert list(BrokerEpoch.objects.values_list("epoch", flat=True)) == [before.epoch]
    assert recovery.check_broker() == 1


@pytest.mark.django_db
def test_a_broker_that_cannot_be_reached_changes_nothing():
    assert recovery.check_broker() == 0
    with override_settings(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"):
        recovery.reset()
        assert recovery.current_epoch(timeout=1.0) is None
        assert recovery.check_broker() is None
    assert BrokerEpoch.objects.count() == 1

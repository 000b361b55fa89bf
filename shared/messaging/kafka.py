"""Kafka clients built from settings, with the settings that make this broker behave."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

logger = logging.getLogger(__name__)

_producer: Producer | None = None


def base_config() -> dict[str, Any]:
    return {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "client.id": settings.SERVICE_NAME}


def get_producer() -> Producer:
    """One producer per process. acks=all: a row is marked sent only once the broker has it."""
    global _producer
    if _producer is None:
        _producer = Producer(
            {
                **base_config(),
                "acks": "all",
                "linger.ms": 2,
                "message.timeout.ms": 5000,
                "socket.timeout.ms": 5000,
                "reconnect.backoff.max.ms": 2000,
            }
        )
    return _producer


def reset_producer() -> None:
    global _producer
    _producer = None


def make_consumer(group_id: str, **overrides: Any) -> Consumer:
    """A consumer that stores offsets only when told (after the handler's transaction).

    session.timeout.ms=6000 with max.poll.interval.ms a little above makes a group join
    take seconds instead of the ~23 s of librdkafka's defaults on this broker.
    """
    config = {
        **base_config(),
        "group.id": group_id,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 500,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 10000,
        "topic.metadata.refresh.interval.ms": 5000,
        **overrides,
    }
    return Consumer(config)


def ensure_topics(names: list[str], partitions: int | None = None) -> None:
    """Create topics that do not exist yet (a fresh broker has none), with KAFKA_TOPIC_PARTITIONS each."""
    partitions = partitions or settings.KAFKA_TOPIC_PARTITIONS
    admin = AdminClient(base_config())
    existing = set(admin.list_topics(timeout=5).topics)
    missing = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names if n not in existing]
    if not missing:
        return
    for name, future in admin.create_topics(missing, request_timeout=10).items():
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 - "already exists" from a racing creator is fine
            logger.info("topic %s not created: %s", name, exc)


def broker_reachable(timeout: float = 1.0) -> bool:
    try:
        AdminClient(base_config()).list_topics(timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable" for a health check
        return False

"""Publish again what a broker that came back empty lost.

The outbox marks a row published once the broker acknowledged it. A broker that keeps
nothing on disk (the bundled one, after any restart) or a cluster rebuilt from nothing
loses every acknowledged event that no consumer had read yet: a payment charged, its order
never told. Consumers apply each event once, so publishing again is always safe; the
question is only when, and what.

When: each service's relay looks at the broker's *epoch* every
``OUTBOX_BROKER_CHECK_SECONDS``. The epoch is the topic id of a marker topic that the first
relay to find it missing creates; a broker that lost its data has lost the marker too, and
the topic made again gets a new id. Kafka gives every topic a random id at creation
(KIP-516, Kafka 2.8 and later, the bundled broker too), so no message has to be read.

What: every row this service published since it first saw the previous broker (less a
margin), at most ``OUTBOX_REPLAY_WINDOW_SECONDS`` before it last saw it. Older events were
long consumed; the saga's reconciliation catches anything beyond that.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings
from django.utils import timezone

from shared.messaging.events import topic_name
from shared.messaging.kafka import base_config
from shared.messaging.models import BrokerEpoch, OutboxEvent
from shared.messaging.publisher import replay

logger = logging.getLogger(__name__)

MARKER_TOPIC = "broker-epoch"
#: Events published this long before a broker was first seen may have gone into it.
MARGIN = dt.timedelta(seconds=60)
#: How often ``last_seen_at`` is written while the broker stays the same.
_SEEN_WRITE_EVERY = dt.timedelta(seconds=60)
_NO_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAA"  # the all-zero id of a broker without topic ids

_admin: AdminClient | None = None
_next_check = 0.0


def _admin_client() -> AdminClient:
    global _admin
    if _admin is None:
        _admin = AdminClient(base_config())
    return _admin


def reset() -> None:
    """Forget the process's admin client and check timer (tests, a changed broker address)."""
    global _admin, _next_check
    _admin = None
    _next_check = 0.0


def current_epoch(timeout: float = 5.0) -> str | None:
    """The broker's epoch (the marker topic's id), creating the marker if it is missing.

    None when the broker cannot be asked now, or has no topic ids.
    """
    admin = _admin_client()
    name = topic_name(MARKER_TOPIC)
    for _ in range(3):
        try:
            description = admin.describe_topics(TopicCollection([name]), request_timeout=timeout)[name].result()
        except KafkaException as exc:
            if "UNKNOWN_TOPIC" not in str(exc):
                logger.info("broker epoch: broker not reachable (%s)", exc)
                return None
            _create_marker(admin, name, timeout)
            continue
        epoch = str(description.topic_id)
        if epoch in ("", _NO_TOPIC_ID, "None"):
            logger.warning("broker epoch: the broker has no topic ids; events it loses are found by reconciliation")
            return None
        return epoch
    return None


def _create_marker(admin: AdminClient, name: str, timeout: float) -> None:
    future = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)], request_timeout=timeout)
    try:
        future[name].result()
        logger.info("broker epoch: marker topic %s created", name)
    except KafkaException as exc:  # another service's relay created it first: that is its epoch
        logger.info("broker epoch: marker topic %s not created (%s)", name, exc)


def check_broker(*, now: dt.datetime | None = None) -> int | None:
    """Compare the broker's epoch with the last one seen; on a new one, publish again.

    Returns how many events were published again (0 when the broker is the one seen
    before), or None when the broker could not be asked or the replay did not finish (it
    is then tried again at the next check, as the epoch is stored only after it).
    """
    epoch = current_epoch()
    if epoch is None:
        return None
    now = now or timezone.now()
    last = BrokerEpoch.objects.order_by("-last_seen_at").first()
    if last is not None and last.epoch == epoch:
        if now - last.last_seen_at >= _SEEN_WRITE_EVERY:
            BrokerEpoch.objects.filter(pk=last.pk).update(last_seen_at=now)
        return 0
    window = dt.timedelta(seconds=settings.OUTBOX_REPLAY_WINDOW_SECONDS)
    if last is None:
        since = now - window
    else:
        since = max(last.first_seen_at - MARGIN, last.last_seen_at - window)
    rows = OutboxEvent.objects.filter(published_at__gte=since)
    try:
        replayed = replay(rows)
    except (RuntimeError, KafkaException) as exc:
        logger.warning("broker epoch: new broker %s, but publishing again stopped (%s); next check retries", epoch, exc)
        return None
    # update_or_create: ids are random, but a broker seen long ago must not stop the record.
    BrokerEpoch.objects.update_or_create(
        epoch=epoch, defaults={"first_seen_at": now, "last_seen_at": now, "replayed": replayed}
    )
    if last is None:
        logger.info("broker epoch: first broker seen (%s); %d recent events published again", epoch, replayed)
    else:
        logger.warning(
            "broker epoch: the broker came back without its data (%s, was %s); %d events published since %s "
            "published again",
            epoch,
            last.epoch,
            replayed,
            since.isoformat(),
        )
    return replayed


def check_broker_if_due() -> int | None:
    """``check_broker`` at most every OUTBOX_BROKER_CHECK_SECONDS in this process (run by the relay)."""
    global _next_check
    interval = settings.OUTBOX_BROKER_CHECK_SECONDS
    if interval <= 0 or time.monotonic() < _next_check:
        return None
    _next_check = time.monotonic() + interval
    return check_broker()

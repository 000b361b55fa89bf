"""The one consumer loop every service runs (``manage.py consume``).

poll a batch -> parse -> apply each once (inbox + handler in one transaction) -> store
the offsets. Consecutive events of types whose handlers take batches (handlers.py) are
applied together in one transaction, and one by one only if that fails. The offsets are
stored only after the transactions committed, so a crash redelivers and the inbox makes
the redelivery a no-op. An event that keeps failing goes to the topic's
dead-letter topic and the ``DeadLetter`` table, and the loop goes on. A database that is
down is not the event's fault: the loop waits and tries the same event again.
"""

from __future__ import annotations

import logging
import signal
import time

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from redis.exceptions import RedisError

from shared.contracts import ContractError
from shared.messaging import handlers, recovery
from shared.messaging.events import Event, dead_letter_topic, topic_name
from shared.messaging.kafka import ensure_topics, get_producer, make_consumer
from shared.messaging.models import DeadLetter
from shared.metrics import CONSUMER_LAG, DEAD_LETTERS
from shared.redis import get_redis
from shared.requests import request_id_var

logger = logging.getLogger(__name__)

_INFRA_ERRORS = (OperationalError, InterfaceError)
UNASSIGNED_ALARM_SECONDS = 60.0
#: Set in Redis while this service's consumer holds partitions (health, and `up` waits for it).
_ASSIGNED_KEY = "consumer:assigned:{service}"
_ASSIGNED_TTL_SECONDS = 10
#: The most messages one poll hands over.
POLL_BATCH = 200


def has_assigned_consumer() -> bool:
    """Whether this service's consumer holds partitions now (it renews the mark while it does)."""
    return bool(get_redis().exists(_ASSIGNED_KEY.format(service=settings.SERVICE_NAME)))


def _mark_assigned(assigned: bool) -> None:
    key = _ASSIGNED_KEY.format(service=settings.SERVICE_NAME)
    try:
        if assigned:
            get_redis().set(key, "1", ex=_ASSIGNED_TTL_SECONDS)
        else:
            get_redis().delete(key)
    except RedisError as exc:  # only health reads it: consuming goes on without Redis
        logger.info("consumer: readiness mark not written (%s)", exc)


class EventConsumer:
    def __init__(self, group: str, *, max_attempts: int | None = None, retry_delay: float = 0.2):
        self.group = group
        self.max_attempts = max_attempts or settings.CONSUMER_MAX_ATTEMPTS
        self.retry_delay = retry_delay
        self.running = True
        self.base_topics = handlers.topics()
        self._unprefix = {topic_name(t): t for t in self.base_topics}

    def stop(self, *_args) -> None:
        self.running = False

    def run(self, *, max_messages: int | None = None, idle_exit_seconds: float | None = None) -> int:
        """Consume until stopped (or until ``max_messages`` / idle time, for tests)."""
        if not self.base_topics:
            logger.warning("consumer %s: no handlers registered, nothing to consume", self.group)
            return 0
        epoch, epoch_checked = recovery.current_epoch(), time.monotonic()
        consumer = self._connect(epoch)
        handled = 0
        idle_since = unassigned_since = time.monotonic()
        marked_at = lag_reported_at = 0.0
        try:
            while self.running:
                wanted = POLL_BATCH if max_messages is None else max(1, min(POLL_BATCH, max_messages - handled))
                msgs = _poll_batch(consumer, wanted)
                now = time.monotonic()
                if now - lag_reported_at > _LAG_REPORT_SECONDS:
                    lag_reported_at = now
                    self._report_lag(consumer)
                if consumer.assignment():
                    unassigned_since = now
                    if now - marked_at > _ASSIGNED_TTL_SECONDS / 3:
                        _mark_assigned(True)
                        marked_at = now
                elif now - unassigned_since > UNASSIGNED_ALARM_SECONDS:
                    # Nothing is consumed while this lasts: say so loudly (a broker whose group
                    # state is stuck needs an operator: restart it, then replay_events).
                    logger.error(
                        "consumer %s: no partitions assigned for %.0f s; events are not being applied",
                        self.group,
                        now - unassigned_since,
                    )
                    unassigned_since = now
                if now - epoch_checked > settings.OUTBOX_BROKER_CHECK_SECONDS > 0:
                    epoch_checked = now
                    current = recovery.current_epoch(timeout=2.0)
                    if current is not None and current != epoch:
                        # The broker lost its data: its topics were made again (maybe by a
                        # producer, with the broker's default partitions) and the group's
                        # offsets are gone. A consumer from before keeps positions and metadata
                        # of a broker that no longer exists, and its automatic rejoin may be
                        # cut short by this very restart; so start over with a new consumer
                        # in the new broker's own group (see _connect).
                        logger.warning(
                            "consumer %s: the broker came back without its data; joining it afresh", self.group
                        )
                        _mark_assigned(False)
                        _settle_join(consumer)
                        consumer.close()
                        consumer = self._connect(current)
                        marked_at = 0.0
                        unassigned_since = now
                    epoch = current or epoch
                msgs = [m for m in msgs if not _is_error(m, self.group)]
                if not msgs:
                    if idle_exit_seconds is not None and now - idle_since > idle_exit_seconds:
                        break
                    continue
                idle_since = time.monotonic()
                self.process_batch(msgs)
                _store_offsets(consumer, msgs, self.group)
                handled += len(msgs)
                if max_messages is not None and handled >= max_messages:
                    break
        finally:
            _mark_assigned(False)
            _settle_join(consumer)
            consumer.close()  # commits the stored offsets, leaves the group
        return handled

    def _report_lag(self, consumer) -> None:
        """The messages behind, per topic, of the partitions this consumer holds (for /metrics).

        Local reads only: the high watermarks librdkafka has from its last fetches, and the
        positions it holds; no request to the broker.
        """
        lag: dict[str, int] = dict.fromkeys(self.base_topics, 0)
        try:
            for tp in consumer.position(consumer.assignment()):
                low, high = consumer.get_watermark_offsets(tp, cached=True)
                behind = high - (tp.offset if tp.offset >= 0 else low)
                base = self._unprefix.get(tp.topic, tp.topic)
                lag[base] = lag.get(base, 0) + max(0, behind)
        except KafkaException as exc:
            logger.debug("consumer %s: lag not read (%s)", self.group, exc)
            return
        for topic, behind in lag.items():
            CONSUMER_LAG.labels(self.group, topic).set(behind)

    def _connect(self, epoch: str | None):
        """A consumer subscribed to this group's topics (made first if the broker lacks them).

        The Kafka group is named for the group and the broker's epoch: one broker lifetime
        has one group per consumer, as ever, and a broker that came back empty (whose group
        offsets are gone anyway) gets a group no member of the old broker's can have joined
        half-way and left stuck in a rebalance, which the bundled broker has been seen to do.
        """
        names = [topic_name(t) for t in self.base_topics]
        ensure_topics(names + [dead_letter_topic(t) for t in self.base_topics])
        group = f"{self.group}.{epoch}" if epoch else self.group
        consumer = make_consumer(group)
        consumer.subscribe(names)
        logger.info("consumer %s subscribed to %s (Kafka group %s)", self.group, ", ".join(names), group)
        return consumer

    def process_batch(self, msgs: list[Message]) -> None:
        """Apply a poll's messages in order. Returns only when their offsets may be stored."""
        run: list[tuple[Message, Event]] = []
        for msg in msgs:
            event = self._parse(msg)
            if event is not None and not handlers.handled(event.event_type):
                # Nothing here takes it (a topic carries others' events too: the catalog reads
                # StockChanged between the inventory's StockReserved): read past, it changes
                # nothing, so it must not cut the run into a transaction per event.
                continue
            if event is not None and handlers.batched(event.event_type):
                run.append((msg, event))
                continue
            self._apply_run(run)
            run = []
            if event is not None:
                self.process(msg, event)
        self._apply_run(run)

    def _apply_run(self, run: list[tuple[Message, Event]]) -> None:
        """Consecutive events of batch-taking types: one transaction, or one by one if it fails."""
        if len(run) > 1:
            try:
                handlers.apply_events(self.group, [event for _, event in run])
                return
            except Exception as exc:  # noqa: BLE001 - each event then gets its own retries
                logger.warning("consumer %s: a batch of %d failed (%s); one by one", self.group, len(run), exc)
                close_old_connections()
        for msg, event in run:
            self.process(msg, event)

    def _parse(self, msg: Message) -> Event | None:
        """The message's event, its payload read as its contract. A malformed message, an
        unknown version or a payload that does not fit is dead-lettered at once (None): no
        retry can change it."""
        base_topic = self._unprefix.get(msg.topic(), msg.topic())
        try:
            event = Event.from_json(msg.value(), topic=base_topic)
        except ValueError as exc:
            self.dead_letter(msg, base_topic, None, f"malformed message: {exc}", attempts=1)
            return None
        try:
            return handlers.typed(event)
        except ContractError as exc:
            self.dead_letter(msg, base_topic, event, str(exc), attempts=1)
            return None

    def process(self, msg: Message, event: Event | None = None) -> None:
        """Apply one message, or dead-letter it. Returns only when the offset may be stored."""
        base_topic = self._unprefix.get(msg.topic(), msg.topic())
        if event is None:
            event = self._parse(msg)
            if event is None:
                return
        token = request_id_var.set(event.request_id or "-")
        try:
            attempt = db_waits = 0
            while True:
                attempt += 1
                try:
                    handlers.apply_event(self.group, event)
                    return
                except _INFRA_ERRORS as exc:
                    # Not the event's fault: wait for the database, never dead-letter for it.
                    logger.warning(
                        "consumer %s: database unavailable (%s); retrying %s", self.group, exc, event.event_id
                    )
                    close_old_connections()
                    attempt -= 1  # an outage does not count toward dead-lettering
                    db_waits += 1
                    time.sleep(min(5.0, self.retry_delay * db_waits))
                    if not self.running:
                        raise
                except Exception as exc:  # noqa: BLE001 - any handler error counts toward dead-lettering
                    logger.warning(
                        "consumer %s: %s %s failed (attempt %d/%d): %s",
                        self.group,
                        event.event_type,
                        event.event_id,
                        attempt,
                        self.max_attempts,
                        exc,
                    )
                    if attempt >= self.max_attempts:
                        self.dead_letter(msg, base_topic, event, repr(exc), attempts=attempt)
                        return
                    time.sleep(self.retry_delay * attempt)
        finally:
            request_id_var.reset(token)

    def dead_letter(self, msg: Message, base_topic: str, event: Event | None, error: str, *, attempts: int) -> None:
        raw = msg.value() or b""
        DEAD_LETTERS.labels(self.group, base_topic).inc()
        logger.error(
            "consumer %s: dead-lettering %s from %s: %s",
            self.group,
            event.event_id if event else "unparseable message",
            base_topic,
            error,
        )
        while True:
            try:
                DeadLetter.objects.create(
                    consumer=self.group,
                    topic=base_topic,
                    partition=msg.partition(),
                    offset=msg.offset(),
                    event_id=str(event.event_id) if event else "",
                    event_type=event.event_type if event else "",
                    raw=raw.decode("utf-8", errors="replace"),
                    error=error[:4000],
                    attempts=attempts,
                )
                break
            except DatabaseError as exc:
                logger.warning("consumer %s: cannot record dead letter yet (%s)", self.group, exc)
                close_old_connections()
                time.sleep(1.0)
        try:
            producer = get_producer()
            producer.produce(
                dead_letter_topic(base_topic),
                key=msg.key(),
                value=raw,
                headers={"error": error[:500], "consumer": self.group},
            )
            producer.flush(5.0)
        except (KafkaException, BufferError) as exc:
            # The DeadLetter row is the durable record; the topic copy is for outside tools.
            logger.warning("consumer %s: dead-letter topic copy not sent (%s); the table has it", self.group, exc)


def _poll_batch(consumer, wanted: int) -> list[Message]:
    """Wait up to half a second for a message, then take what else has arrived, up to ``wanted``.

    ``consume(n, timeout)`` would wait out its timeout for n messages; the wait is poll's.
    """
    first = consumer.poll(0.5)
    if first is None:
        return []
    if wanted == 1:
        return [first]
    return [first, *consumer.consume(num_messages=wanted - 1, timeout=0)]


def _is_error(msg: Message, group: str) -> bool:
    if not msg.error():
        return False
    if msg.error().code() != KafkaError._PARTITION_EOF:
        logger.warning("consumer %s: %s", group, msg.error())
    return True


def _store_offsets(consumer, msgs: list[Message], group: str) -> None:
    """Store, per partition, the offset after the last of ``msgs`` (all applied or dead-lettered)."""
    after: dict[tuple[str, int], int] = {}
    for msg in msgs:
        key = (msg.topic(), msg.partition())
        after[key] = max(after.get(key, -1), msg.offset() + 1)
    try:
        consumer.store_offsets(offsets=[TopicPartition(t, p, o) for (t, p), o in after.items()])
    except KafkaException as exc:
        # The partition went away under us (a broker that lost its data): the events are
        # applied, so a redelivery is skipped by the inbox; nothing is lost.
        logger.warning("consumer %s: offsets not stored (%s); a redelivery is skipped", group, exc)


#: How often the consumer records its lag for /metrics.
_LAG_REPORT_SECONDS = 2.0


def _settle_join(consumer, timeout: float = 8.0) -> None:
    """Let a group join that is under way finish before leaving.

    A member that leaves between joining and its assignment has been seen to leave the
    bundled broker's group stuck in a rebalance for good. Messages polled here are not
    applied and their offsets not stored: they are delivered again to whoever gets them.
    """
    deadline = time.monotonic() + timeout
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.2)


def install_signal_handlers(consumer: EventConsumer) -> None:
    signal.signal(signal.SIGTERM, consumer.stop)
    signal.signal(signal.SIGINT, consumer.stop)

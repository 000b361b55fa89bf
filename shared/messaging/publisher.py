"""The outbox relay: publish due outbox rows to Kafka, mark them sent, retry with backoff.

Run by Celery beat every OUTBOX_SWEEP_SECONDS (``shared.messaging.tasks.publish_outbox``) and woken
after each commit that wrote an event. Rows are claimed with ``SKIP LOCKED`` so several
relays never send the same row at once; a row is marked published only after the broker
acknowledged it, so Kafka being down just lets the outbox grow until it is back.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from shared.messaging.events import envelope_json, topic_name
from shared.messaging.kafka import get_producer
from shared.messaging.models import OutboxEvent
from shared.metrics import PUBLISH_DELAY
from shared.reads import PreparedRead, prepare

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30


def backoff_seconds(attempts: int) -> float:
    return min(MAX_BACKOFF_SECONDS, 0.5 * (2 ** max(0, attempts - 1)))


def _produce(rows: Iterable[OutboxEvent]) -> dict[int, str | None]:
    """Send rows; return {row id: None if acknowledged, else the error}."""
    producer = get_producer()
    outcome: dict[int, str | None] = {}

    def on_delivery(row_id: int):
        def callback(err, _msg) -> None:
            outcome[row_id] = None if err is None else str(err)

        return callback

    for row in rows:
        try:
            producer.produce(
                topic_name(row.topic),
                key=row.aggregate_id.encode(),
                value=envelope_json(row),
                headers={"event_type": row.event_type},
                on_delivery=on_delivery(row.id),
            )
        except BufferError as exc:
            outcome[row.id] = f"local queue full: {exc}"
        producer.poll(0)
    producer.flush(6.0)
    return outcome


@functools.lru_cache(maxsize=16)
def _due(batch_size: int) -> PreparedRead:
    """The due rows, oldest first, locked (others' locked rows skipped): compiled once per batch size."""
    return prepare(
        lambda now: (
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(published_at__isnull=True, next_attempt_at__lte=now)
            .order_by("id")[:batch_size]
        )
    )


def _mark_published(ids: list[int], at: dt.datetime) -> None:
    """One UPDATE for the batch (bulk_update's CASE per row was most of the relay's CPU), made once."""
    meta = OutboxEvent._meta
    quote = connection.ops.quote_name
    field = meta.get_field("published_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {quote(field.column)} = %s WHERE {quote(meta.pk.column)} = ANY(%s)",
            [field.get_db_prep_save(at, connection=connection), ids],
        )


def publish_pending(*, batch_size: int | None = None) -> int:
    """Publish one batch of due rows. Returns how many were acknowledged."""
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    now = timezone.now()
    with transaction.atomic():
        rows = _due(batch_size)(now=now)
        if not rows:
            return 0
        outcome = _produce(rows)
        done = timezone.now()
        published = [row.id for row in rows if outcome.get(row.id, "no delivery report") is None]
        failed = [row for row in rows if outcome.get(row.id, "no delivery report") is not None]
        if published:
            _mark_published(published, done)
            for row in rows:
                if outcome.get(row.id, "no delivery report") is None:
                    PUBLISH_DELAY.observe((done - row.occurred_at).total_seconds())
        for row in failed:
            row.attempts += 1
            row.next_attempt_at = done + dt.timedelta(seconds=backoff_seconds(row.attempts))
            row.last_error = outcome.get(row.id, "no delivery report")[:1000]
        if failed:
            OutboxEvent.objects.bulk_update(failed, ["attempts", "next_attempt_at", "last_error"])
        sent = len(published)
    if sent < len(rows):
        logger.warning(
            "outbox: %d of %d events not acknowledged, will retry (%s)",
            len(rows) - sent,
            len(rows),
            next((e for e in outcome.values() if e), "no delivery report"),
        )
    return sent


def publish_all_pending(max_batches: int = 100) -> int:
    """Publish batch after batch until one is not full: the rows due when it was read are sent.

    A row committed after that read has woken a relay run of its own, or is covered by one
    scheduled to start after its commit (:func:`wake_relay`); a run woken while this one
    holds the relay lock asks it for one more pass (``shared.messaging.tasks``). So no run
    ends with a read that finds nothing (1.4-1.9 ms of CPU on every run).
    """
    total = 0
    batch_size = settings.OUTBOX_BATCH_SIZE
    for _ in range(max_batches):
        sent = publish_pending(batch_size=batch_size)
        total += sent
        if sent < batch_size:
            break
    return total


def replay(queryset) -> int:
    """Publish the given rows again (published or not), in id order. For recovery."""
    sent = 0
    ids = list(queryset.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), 500):
        rows = list(OutboxEvent.objects.filter(id__in=ids[start : start + 500]).order_by("id"))
        outcome = _produce(rows)
        ok = [r for r in rows if outcome.get(r.id, "x") is None]
        now = timezone.now()
        OutboxEvent.objects.filter(id__in=[r.id for r in ok], published_at__isnull=True).update(published_at=now)
        sent += len(ok)
        if len(ok) < len(rows):
            raise RuntimeError(f"replay stopped: {len(rows) - len(ok)} events not acknowledged by the broker")
    return sent


#: One hash tag per service, so the script below touches one slot (as on Redis Cluster).
_WAKE_KEY = "outbox:wake:{{{service}}}"
_TRAILING = ":trailing"
#: A run at once (1), a run at the window's end (2), or, already both: minus the ms until
#: the trailing run (<= 0).
_WAKE_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 2 end
return -redis.call('PTTL', KEYS[2])
"""
#: Until when (time.monotonic) a relay run already scheduled covers this process's commits.
_covered_until = 0.0
#: Taken off a scheduled run's time: the worker's clock and its queue may be a little early.
_MARGIN_SECONDS = 0.02


def _claim_wake(client, key: str, window_ms: int) -> int:
    from shared.redis import script

    return int(script(client, _WAKE_SCRIPT)(keys=[key, key + _TRAILING], args=[window_ms]))


def wake_relay() -> None:
    """After a commit that wrote an event: ask the relay to run now, and at most every OUTBOX_WAKE_MS.

    The first commit of a window wakes the relay at once; the commits after it within the
    window are covered by one more run at the window's end (a trailing wake-up), so an
    event never waits for beat's sweep and under load the events of many commits leave in
    one batch instead of one relay run (a transaction, a produce and a flush) each. One
    Redis script decides which; its answer also tells this process until when the
    trailing run covers what it commits, and until then it asks nothing at all.

    Failing to wake is harmless (beat runs the relay every few seconds), so errors are logged,
    not raised: this runs after the commit and must not turn a success into an error.
    """
    global _covered_until
    now = time.monotonic()
    if now < _covered_until:
        return  # the run at the end of this window is on its way and sees this commit
    from celery import current_app

    from shared.redis import get_redis

    window_ms = settings.OUTBOX_WAKE_MS
    try:
        answer = _claim_wake(get_redis(), _WAKE_KEY.format(service=settings.SERVICE_NAME), window_ms)
        if answer == 1:
            countdown = None
        elif answer == 2:
            countdown = window_ms / 1000
            _covered_until = now + countdown - _MARGIN_SECONDS
        else:
            _covered_until = now - answer / 1000 - _MARGIN_SECONDS
            return  # a run at the end of this window is already on its way
        current_app.send_task(
            "shared.messaging.tasks.publish_outbox",
            queue=settings.CELERY_TASK_DEFAULT_QUEUE,
            countdown=countdown,
            expires=10,
        )
    except Exception as exc:  # noqa: BLE001
        _covered_until = 0.0
        logger.warning("outbox: could not wake the relay (%s); beat will publish within seconds", exc)

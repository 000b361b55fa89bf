"""The beat job that vacuums churned tables, against the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from shared.maintenance import purge_old_events, vacuum_churned_tables
from shared.messaging.models import OutboxEvent, ProcessedEvent


def _stats(table: str) -> tuple[int, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT n_dead_tup, last_vacuum FROM pg_stat_user_tables WHERE relname = %s", [table])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, None)


def _wait_for_dead_rows(table: str, at_least: int) -> None:
    deadline = time.monotonic() + 5
    while _stats(table)[0] < at_least:  # the statistics reach shared memory when a statement ends
        assert time.monotonic() < deadline, _stats(table)
        time.sleep(0.05)


@pytest.fixture
def churned_table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE maintenance_churn (id int PRIMARY KEY, n int NOT NULL)")
        cursor.execute("CREATE TABLE maintenance_quiet (id int PRIMARY KEY, n int NOT NULL)")
        cursor.execute("INSERT INTO maintenance_churn SELECT i, 0 FROM generate_series(1, 50) i")
        cursor.execute("INSERT INTO maintenance_quiet SELECT i, 0 FROM generate_series(1, 50) i")
        for _ in range(3):  # as an outbox's rows are: written, then updated
            cursor.execute("UPDATE maintenance_churn SET n = n + 1")
        cursor.execute("UPDATE maintenance_quiet SET n = 1 WHERE id <= 2")
    try:
        yield "maintenance_churn"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE maintenance_churn, maintenance_quiet")


@pytest.mark.django_db(transaction=True)  # VACUUM cannot run inside a transaction
def test_a_table_with_many_dead_rows_is_vacuumed_and_a_quiet_one_is_not(churned_table, settings):
    settings.DB_VACUUM_DEAD_ROWS, settings.DB_VACUUM_DEAD_FRACTION = 100, 0.5
    _wait_for_dead_rows(churned_table, 150)
    assert _stats(churned_table)[1] is None

    done = vacuum_churned_tables()

    assert churned_table in done and "maintenance_quiet" not in done
    dead, vacuumed_at = _stats(churned_table)
    assert vacuumed_at is not None and dead == 0
    assert churned_table not in vacuum_churned_tables()  # nothing left to do there


# ----------------------------------------------------------------------------- delivered events past their retention

DAY = 86400


def _outbox(age_days: float, *, published: bool = True) -> OutboxEvent:
    at = timezone.now() - dt.timedelta(days=age_days)
    return OutboxEvent.objects.create(
        event_type="test.event",
        topic="test",
        aggregate_type="test",
        aggregate_id="1",
        payload={},
        occurred_at=at,
        next_attempt_at=at,
        published_at=at if published else None,
    )


def _inbox(age_days: float) -> ProcessedEvent:
    row = ProcessedEvent.objects.create(consumer="test", event_id=uuid.uuid4(), event_type="test.event")
    ProcessedEvent.objects.filter(pk=row.pk).update(processed_at=timezone.now() - dt.timedelta(days=age_days))
    return row


@pytest.fixture
def retention(settings):
    settings.OUTBOX_RETENTION_SECONDS, settings.INBOX_RETENTION_SECONDS = 7 * DAY, 14 * DAY
    settings.OUTBOX_REPLAY_WINDOW_SECONDS, settings.EVENT_PURGE_BATCH = 3600, 2
    return settings


@pytest.mark.django_db
def test_delivered_events_past_their_retention_are_deleted_and_the_rest_stay(retention):
    gone = [_outbox(8), _outbox(30), _outbox(9), _inbox(15), _inbox(40), _inbox(20)]
    kept = [_outbox(6), _outbox(30, published=False), _inbox(13)]  # recent; never published; recent

    assert purge_old_events() == {"outbox": 3, "inbox": 3}  # in batches of 2

    assert not OutboxEvent.objects.filter(pk__in=[r.pk for r in gone[:3]]).exists()
    assert not ProcessedEvent.objects.filter(pk__in=[r.pk for r in gone[3:]]).exists()
    assert OutboxEvent.objects.filter(pk__in=[kept[0].pk, kept[1].pk]).count() == 2
    assert ProcessedEvent.objects.filter(pk=kept[2].pk).exists()
    assert purge_old_events() == {"outbox": 0, "inbox": 0}


@pytest.mark.django_db
def test_the_outbox_keeps_at_least_the_broker_replays_window(retention):
    retention.OUTBOX_RETENTION_SECONDS = 60  # shorter than the replay's window of an hour
    within, past = _outbox(0.5 / 24), _outbox(2 / 24)  # 30 minutes old, 2 hours old
    assert purge_old_events()["outbox"] == 1
    assert OutboxEvent.objects.filter(pk=within.pk).exists() and not OutboxEvent.objects.filter(pk=past.pk).exists()


@pytest.mark.django_db
def test_a_retention_of_zero_keeps_everything(retention):
    retention.OUTBOX_RETENTION_SECONDS = retention.INBOX_RETENTION_SECONDS = 0
    _outbox(400)
    _inbox(400)
    assert purge_old_events() == {"outbox": 0, "inbox": 0}
    assert OutboxEvent.objects.count() >= 1 and ProcessedEvent.objects.count() >= 1


def test_the_purge_runs_from_every_services_beat(settings):
    job = settings.CELERY_BEAT_SCHEDULE["purge-old-events"]
    assert job["task"] == purge_old_events.name and job["schedule"] == 3600.0

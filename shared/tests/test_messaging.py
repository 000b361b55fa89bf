"""Outbox -> real broker -> consumer: published once acknowledged, applied once, poison dead-lettered."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Producer
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from shared.messaging import handlers
from shared.messaging.consumer import EventConsumer
from shared.messaging.events import insert_announced, record_event, topic_name
from shared.messaging.kafka import ensure_topics, reset_producer
from shared.messaging.models import DeadLetter, OutboxEvent, ProcessedEvent
from shared.messaging.publisher import publish_pending
from shared.tests.parcels import ParcelLabelled, ParcelPacked, ParcelWeighed

applied: list[tuple[str, ParcelPacked]] = []


@handlers.handles(ParcelPacked)
def on_parcel_packed(event):
    if event.payload.explode:
        raise RuntimeError("this parcel cannot be handled")
    applied.append((event.aggregate_id, event.payload))


weighed: list[list[str]] = []


@handlers.handles(ParcelWeighed, batch=True)
def on_parcels_weighed(events):
    if any(e.payload.explode for e in events):
        raise RuntimeError("this scale is broken")
    weighed.append([e.aggregate_id for e in events])


@pytest.fixture(autouse=True)
def fresh(settings):
    applied.clear()
    weighed.clear()
    settings.KAFKA_TOPIC_PREFIX = f"test-shared-{uuid.uuid4().hex[:8]}."
    reset_producer()
    yield
    reset_producer()


def _record(parcel_id: int, **payload) -> OutboxEvent:
    with transaction.atomic():
        return record_event(ParcelPacked(parcel_id=parcel_id, **payload))


def test_record_event_outside_a_transaction_is_refused(transactional_db):
    with pytest.raises(RuntimeError):
        record_event(ParcelPacked(parcel_id=1))


def test_rows_and_their_events_in_one_statement_commit_on_their_own_and_then_wake_the_relay(
    transactional_db, monkeypatch
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from shared.messaging import publisher

    seen_at_wake: list[tuple[int, int]] = []
    monkeypatch.setattr(
        publisher,
        "wake_relay",
        lambda: seen_at_wake.append((ProcessedEvent.objects.count(), OutboxEvent.objects.count())),
    )
    row = ProcessedEvent(consumer="parcels", event_id=uuid.uuid4(), event_type="ParcelPacked")
    with CaptureQueriesContext(connection) as captured:
        (saved,) = insert_announced([row], events=[ParcelPacked(parcel_id=5)])
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    assert statements == ["WITH", "SELECT", "SELECT"], statements  # no BEGIN and COMMIT; then the wake's counts
    assert saved == [row] and row.pk is not None
    assert seen_at_wake == [(1, 1)]  # woken once, with both already committed
    assert OutboxEvent.objects.get().aggregate_id == "5"


def test_rows_and_their_events_in_a_transaction_rolled_back_leave_nothing_and_wake_nobody(
    transactional_db, monkeypatch
):
    from shared.messaging import publisher

    woken: list[bool] = []
    monkeypatch.setattr(publisher, "wake_relay", lambda: woken.append(True))
    with pytest.raises(RuntimeError), transaction.atomic():
        insert_announced(
            [ProcessedEvent(consumer="parcels", event_id=uuid.uuid4(), event_type="ParcelPacked")],
            events=[ParcelPacked(parcel_id=6)],
        )
        raise RuntimeError("the change fails after its rows were sent")
    assert ProcessedEvent.objects.count() == 0 and OutboxEvent.objects.count() == 0
    assert woken == []


def test_record_event_returns_the_row_as_stored(db):
    with transaction.atomic():
        row = record_event(ParcelPacked(parcel_id=7, explode=False))
        second = record_event(ParcelWeighed(parcel_id=8))
    stored = OutboxEvent.objects.get(pk=row.pk)
    fields = [f.attname for f in OutboxEvent._meta.concrete_fields]
    assert {f: getattr(row, f) for f in fields} == {f: getattr(stored, f) for f in fields}
    assert stored.event_type == "ParcelPacked" and stored.aggregate_id == "7"
    assert stored.payload == {"parcel_id": 7, "explode": False, "weight": 0}
    assert stored.published_at is None and stored.attempts == 0 and stored.last_error == ""
    assert stored.next_attempt_at == stored.occurred_at
    assert second.pk > row.pk and second.event_id != row.event_id
    assert not row._state.adding  # a save() of the returned row updates it, never inserts a twin
    row.attempts = 1
    row.save(update_fields=["attempts"])
    assert OutboxEvent.objects.count() == 2


def test_event_rolled_back_with_its_change_is_never_published(db):
    with pytest.raises(RuntimeError, match="change failed"), transaction.atomic():
        record_event(ParcelPacked(parcel_id=1))
        raise RuntimeError("change failed")
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_broker_down_keeps_rows_and_retries_later():
    row = _record(1)
    with override_settings(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"):
        reset_producer()
        assert publish_pending() == 0
    row.refresh_from_db()
    assert row.published_at is None and row.attempts == 1 and row.last_error
    assert row.next_attempt_at > row.occurred_at
    reset_producer()
    OutboxEvent.objects.filter(pk=row.pk).update(next_attempt_at=row.occurred_at)  # due again now
    assert publish_pending() == 1
    row.refresh_from_db()
    assert row.published_at is not None


@pytest.mark.django_db(transaction=True)  # the consumer commits, as it does in production
def test_published_events_are_applied_once_and_poison_goes_to_dead_letters():
    ensure_topics([topic_name("parcels"), topic_name("parcels.dlq")])
    _record(1, weight=3)
    _record(2, explode=True)
    assert publish_pending() == 2
    # a message that is no event at all, straight onto the topic
    raw = Producer({"bootstrap.servers": __import__("django.conf").conf.settings.KAFKA_BOOTSTRAP_SERVERS})
    raw.produce(topic_name("parcels"), key=b"3", value=b"{not json")
    raw.flush(5)
    _record(4, weight=1)
    assert publish_pending() == 1

    consumer = EventConsumer("test-group", retry_delay=0.01)
    handled = consumer.run(max_messages=4, idle_exit_seconds=20)

    assert handled == 4
    # the loop went on past both poison messages (1 and 4 sit on different partitions: any order)
    assert sorted(a for a, _ in applied) == ["1", "4"]
    assert ProcessedEvent.objects.filter(consumer="test-group").count() == 2
    letters = {dl.event_type or "malformed": dl for dl in DeadLetter.objects.all()}
    assert set(letters) == {"ParcelPacked", "malformed"}
    assert letters["ParcelPacked"].attempts == consumer.max_attempts


def _raw_envelope(event_type: str, payload: dict, *, version: int = 1) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "event_version": version,
            "occurred_at": "2026-11-25T20:00:00+00:00",
            "aggregate_type": "parcel",
            "aggregate_id": str(payload.get("parcel_id", "")),
            "payload": payload,
        }
    ).encode()


@pytest.mark.django_db(transaction=True)
def test_an_unknown_version_or_a_payload_that_does_not_fit_is_dead_lettered_at_once_with_the_reason():
    ensure_topics([topic_name("parcels"), topic_name("parcels.dlq")])
    raw = Producer({"bootstrap.servers": __import__("django.conf").conf.settings.KAFKA_BOOTSTRAP_SERVERS})
    for value in (
        _raw_envelope("ParcelPacked", {"parcel_id": 31}, version=2),
        _raw_envelope("ParcelPacked", {"parcel_id": "thirty-two"}),
        _raw_envelope("ParcelPacked", {"weight": 3}),
        _raw_envelope("ParcelPacked", {"parcel_id": "34", "weight": 1, "added_later": True}),
    ):
        raw.produce(topic_name("parcels"), key=b"3", value=value)
    raw.flush(5)

    consumer = EventConsumer("test-contracts", retry_delay=0.01)
    assert consumer.run(max_messages=4, idle_exit_seconds=20) == 4

    # read leniently where the readers always were: "34" is 34, an added key is ignored
    assert applied == [("34", ParcelPacked(parcel_id=34, weight=1))]
    errors = sorted(dl.error for dl in DeadLetter.objects.filter(consumer="test-contracts"))
    assert errors == [
        "ParcelPacked payload does not fit its contract: Expected `int`, got `str` - at `$.parcel_id`",
        "ParcelPacked payload does not fit its contract: Object missing required field `parcel_id`",
        "ParcelPacked version 2 is not known here (this service reads version 1)",
    ]
    assert {dl.attempts for dl in DeadLetter.objects.all()} == {1}  # no retry can change them


@pytest.mark.django_db
def test_redelivered_event_is_applied_once():
    row = _record(5)
    from shared.messaging.events import Event, envelope_json

    event = Event.from_json(envelope_json(row), topic="parcels")
    assert handlers.apply_event("g", event) is True
    assert handlers.apply_event("g", event) is False
    assert len(applied) == 1
    # another consumer group has its own inbox
    assert handlers.apply_event("other-group", event) is True


@pytest.mark.django_db
def test_dead_letter_redrive_applies_it_once_fixed(capsys):
    row = _record(6)
    from shared.messaging.events import envelope_json

    dl = DeadLetter.objects.create(
        consumer="g",
        topic="parcels",
        raw=envelope_json(row).decode(),
        error="boom",
        event_type="ParcelPacked",
        event_id=str(row.event_id),
    )
    call_command("dead_letters", "redrive", str(dl.id))
    dl.refresh_from_db()
    assert dl.state == DeadLetter.State.REDRIVEN
    assert [a for a, _ in applied] == ["6"]


@pytest.mark.django_db
def test_replay_republishes_by_type(capsys):
    ensure_topics([topic_name("parcels")])
    _record(7)
    _record(8)
    assert publish_pending() == 2
    call_command("replay_events", "--type", "ParcelPacked", "--aggregate-id", "8")
    assert json.loads(capsys.readouterr().out) == {"replayed": 1}


@pytest.mark.django_db
def test_replay_endpoint_publishes_one_aggregates_events_again(internal_client, anon_client):
    ensure_topics([topic_name("parcels")])
    _record(9)
    _record(10)
    assert publish_pending() == 2
    body = {"aggregate_type": "parcel", "aggregate_ids": ["10"]}
    r = internal_client.post("/internal/events/replay", body, format="json")
    assert r.status_code == 200 and r.json() == {"replayed": 1}
    r = internal_client.post("/internal/events/replay", {**body, "event_types": ["Other"]}, format="json")
    assert r.json() == {"replayed": 0}
    r = internal_client.post(
        "/internal/events/replay", {"aggregate_type": "parcel", "aggregate_ids": []}, format="json"
    )
    assert r.status_code == 400 and "aggregate_ids" in r.json()["error"]["fields"]
    assert anon_client.post("/internal/events/replay", body, format="json").status_code == 404


def test_commits_within_a_wake_window_get_one_run_now_and_one_at_the_windows_end(redis_db, settings, monkeypatch):
    import time

    from celery import current_app

    from shared.messaging import publisher
    from shared.messaging.publisher import wake_relay

    settings.OUTBOX_WAKE_MS = 300
    monkeypatch.setattr(publisher, "_covered_until", 0.0)
    sent: list[float | None] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, **kw: sent.append(kw.get("countdown")))
    for _ in range(5):  # five commits in a burst
        wake_relay()
    # at once for the first; the four after it are covered by one run when the window ends
    assert sent == [None, 0.3]
    time.sleep(0.35)
    wake_relay()  # a commit after the window: at once again
    assert sent == [None, 0.3, None]


@pytest.mark.django_db
def test_the_inbox_claims_each_event_once_per_consumer_in_one_statement(django_assert_num_queries):
    from shared.messaging.events import Event, envelope_json

    first, second = (Event.from_json(envelope_json(_record(n)), topic="parcels") for n in (11, 12))
    with transaction.atomic(), django_assert_num_queries(1):
        assert handlers.claim("g", [first]) == {str(first.event_id)}
    with transaction.atomic():
        # claimed before: only the new one is handed back, the duplicate inside the list too
        assert handlers.claim("g", [first, second, second]) == {str(second.event_id)}
        assert handlers.claim("other-group", [first]) == {str(first.event_id)}
    assert ProcessedEvent.objects.filter(consumer="g").count() == 2


@pytest.mark.django_db(transaction=True)
def test_batch_handlers_get_a_polls_events_together_and_a_bad_one_alone_is_dead_lettered():
    ensure_topics([topic_name("parcels"), topic_name("parcels.dlq")])
    for parcel_id in (21, 22, 23, 24):
        with transaction.atomic():
            record_event(ParcelWeighed(parcel_id=parcel_id, explode=parcel_id == 23))
    assert publish_pending() == 4

    consumer = EventConsumer("test-batch", retry_delay=0.01)
    assert consumer.run(max_messages=4, idle_exit_seconds=20) == 4

    # a batch with the bad one rolls back whole; then each is applied alone, once
    assert sorted(p for batch in weighed for p in batch) == ["21", "22", "24"]
    assert ProcessedEvent.objects.filter(consumer="test-batch").count() == 3
    assert DeadLetter.objects.get().event_type == "ParcelWeighed"


@pytest.mark.django_db(transaction=True)
def test_events_no_handler_takes_do_not_split_a_polls_batch(monkeypatch):
    # A topic carries events this consumer does not handle between those it does (the
    # inventory's StockReserved between its StockChanged, for the catalog): read past, they
    # must not cut the poll's batch into transactions of one event each.
    ensure_topics([topic_name("parcels"), topic_name("parcels.dlq")])
    for parcel_id in (41, 42, 43):
        with transaction.atomic():
            record_event(ParcelWeighed(parcel_id=parcel_id))
            record_event(ParcelLabelled(parcel_id=parcel_id))
    assert publish_pending() == 6
    batches: list[int] = []
    apply_events = handlers.apply_events

    def counted(group, events):
        batches.append(len(events))
        return apply_events(group, events)

    monkeypatch.setattr(handlers, "apply_events", counted)
    consumer = EventConsumer("test-read-past")
    assert consumer.run(max_messages=6, idle_exit_seconds=20) == 6

    assert sorted(p for batch in weighed for p in batch) == ["41", "42", "43"]
    assert len(weighed) == len(batches) < 3  # not one transaction per event
    assert ProcessedEvent.objects.filter(consumer="test-read-past").count() == 3  # no inbox row for the others
    assert not DeadLetter.objects.exists()


@pytest.mark.django_db
def test_apply_events_skips_what_was_applied_and_duplicates_inside_the_batch():
    from shared.messaging.events import Event, envelope_json

    def weigh(parcel_id):
        with transaction.atomic():
            row = record_event(ParcelWeighed(parcel_id=parcel_id))
        return Event.from_json(envelope_json(row), topic="parcels")

    a, b = weigh(31), weigh(32)
    assert handlers.apply_event("g", a) is True  # one at a time goes through the batch handler too
    assert handlers.apply_events("g", [a, b, b]) == 1
    assert weighed == [["31"], ["32"]]


def test_commits_a_scheduled_run_covers_ask_redis_nothing(redis_db, settings, monkeypatch):
    import time

    from celery import current_app

    from shared.messaging import publisher

    settings.OUTBOX_WAKE_MS = 300
    monkeypatch.setattr(publisher, "_covered_until", 0.0)
    sent: list[float | None] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, **kw: sent.append(kw.get("countdown")))
    asked: list[int] = []
    claim = publisher._claim_wake
    monkeypatch.setattr(publisher, "_claim_wake", lambda *a: asked.append(1) or claim(*a))

    for _ in range(20):  # a busy process: twenty commits in a burst
        publisher.wake_relay()
    # the first two go to Redis (a run now, one at the window's end); that run covers the rest
    assert sent == [None, 0.3] and len(asked) == 2

    # another process's commit: it learns when the scheduled run comes, and then asks no more
    monkeypatch.setattr(publisher, "_covered_until", 0.0)
    publisher.wake_relay()
    publisher.wake_relay()
    assert sent == [None, 0.3] and len(asked) == 3

    time.sleep(0.35)
    publisher.wake_relay()  # after the window: a run at once again
    assert sent == [None, 0.3, None]


@pytest.mark.django_db(transaction=True)
def test_a_relay_run_that_finds_less_than_a_batch_reads_the_outbox_once(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from shared.messaging.publisher import publish_all_pending

    ensure_topics([topic_name("parcels")])
    for parcel_id in (41, 42, 43):
        _record(parcel_id)
    settings.OUTBOX_BATCH_SIZE = 2
    with CaptureQueriesContext(connection) as ctx:
        assert publish_all_pending() == 3
    # a full batch, then a short one: two reads, and no third that would find nothing
    reads = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT")]
    assert len(reads) == 2 and not OutboxEvent.objects.filter(published_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_relay_woken_while_another_runs_asks_that_one_for_one_more_pass(redis_db, settings, monkeypatch):
    from shared.messaging import publisher, tasks

    ensure_topics([topic_name("parcels")])
    passes: list[int] = []
    real = publisher.publish_all_pending
    monkeypatch.setattr(tasks, "publish_all_pending", lambda: passes.append(1) or real())
    running = redis_db.lock(f"outbox:relay-lock:{settings.SERVICE_NAME}", timeout=60)
    assert running.acquire(blocking=False)  # another relay is running (it may have read already)
    _record(51)
    assert tasks.publish_outbox() == 0 and passes == []  # this one does not wait on the other
    running.release()  # the other relay, at its end, finds the request: here, the next run
    assert tasks.publish_outbox() == 1 and len(passes) == 2
    assert tasks.publish_outbox() == 0 and len(passes) == 3  # asked once, done once


def _partitions(name: str) -> int:
    from confluent_kafka.admin import AdminClient

    from shared.messaging.kafka import base_config

    return len(AdminClient(base_config()).list_topics(name, timeout=5).topics[name].partitions)


def test_topics_are_made_with_the_configured_partitions(settings):
    ensure_topics([topic_name("parcels")])
    settings.KAFKA_TOPIC_PARTITIONS = 2
    ensure_topics([topic_name("crates"), topic_name("parcels")])
    assert _partitions(topic_name("parcels")) == 1  # the default; an existing topic is left as it is
    assert _partitions(topic_name("crates")) == 2


def test_a_handler_taking_a_polls_events_together_handles_each_alone_with_its_request_id():
    import datetime as dt

    from shared.messaging.events import Event
    from shared.requests import current_request_id

    seen: list[tuple[int, str]] = []
    registration = handlers.Registration(
        ParcelPacked, lambda event: seen.append((event.payload.parcel_id, current_request_id())), together=True
    )
    events = [
        Event(
            uuid.uuid4(),
            "ParcelPacked",
            1,
            dt.datetime.now(dt.UTC),
            "parcel",
            str(n),
            ParcelPacked(parcel_id=n),
            request_id=rid,
        )
        for n, rid in ((1, "req-a"), (2, ""), (3, "req-c"))
    ]
    registration.apply(events)
    assert seen == [(1, "req-a"), (2, "-"), (3, "req-c")]
    assert current_request_id() == "-"  # put back after each

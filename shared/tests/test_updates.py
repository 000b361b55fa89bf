"""shared.updates.save_fields: the row save(update_fields=...) writes, from one statement made once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from shared.inserts import insert
from shared.messaging.models import DeadLetter, OutboxEvent
from shared.updates import save_fields

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def _stored(model, pk) -> dict:
    row = model.objects.get(pk=pk)
    return {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields}


def _event(n: int) -> OutboxEvent:
    return OutboxEvent(
        event_type="Thing",
        topic="things",
        aggregate_type="thing",
        aggregate_id=str(n),
        payload={"n": n},
        occurred_at=AT,
        next_attempt_at=AT,
    )


def test_the_row_is_written_as_save_with_update_fields_writes_it():
    mine, twin = insert([_event(1), _event(1)])
    for obj in (mine, twin):
        obj.payload = {"n": 2, "nested": [1, {"a": None}]}
        obj.attempts = 3
        obj.last_error = "broker away"
        obj.next_attempt_at = AT + dt.timedelta(seconds=5)
        obj.aggregate_id = "not written"  # not among the fields: stays as stored
    fields = ["payload", "attempts", "last_error", "next_attempt_at"]
    with CaptureQueriesContext(connection) as queries:
        save_fields(mine, fields)
    twin.save(update_fields=fields)
    assert len(queries) == 1
    mine_row, twin_row = _stored(OutboxEvent, mine.pk), _stored(OutboxEvent, twin.pk)
    for key in ("id", "event_id"):  # each row's own
        assert mine_row.pop(key) != twin_row.pop(key)
    assert mine_row == twin_row and mine_row["aggregate_id"] == "1"


def test_a_creation_stamp_is_left_alone():
    letter = DeadLetter.objects.create(consumer="c", topic="t", raw="{}", error="boom")
    created = letter.created_at
    letter.state = DeadLetter.State.DISCARDED
    letter.resolved_at = AT
    save_fields(letter, ["state", "resolved_at", "created_at"])
    stored = _stored(DeadLetter, letter.pk)
    assert (stored["state"], stored["resolved_at"], stored["created_at"]) == ("discarded", AT, created)


def test_a_missing_row_is_an_error_as_in_save():
    (event,) = insert([_event(1)])
    OutboxEvent.objects.filter(pk=event.pk).delete()
    event.attempts = 1
    with pytest.raises(DatabaseError):
        save_fields(event, ["attempts"])


def test_only_a_saved_rows_own_columns_are_written():
    with pytest.raises(ValueError):
        save_fields(_event(1), ["attempts"])  # never saved
    (event,) = insert([_event(1)])
    with pytest.raises(ValueError):
        save_fields(event, ["id"])


def test_rows_inserted_with_the_save_go_in_the_same_statement():
    (event,) = insert([_event(1)])
    event.attempts = 4
    with CaptureQueriesContext(connection) as queries:
        letters, events = save_fields(
            event,
            ["attempts"],
            inserting=[[DeadLetter(consumer="c", topic="t", raw="{}", error="boom")], [_event(2), _event(3)]],
        )
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["WITH"]
    assert OutboxEvent.objects.get(pk=event.pk).attempts == 4
    assert DeadLetter.objects.get(pk=letters[0].pk).error == "boom"
    assert [OutboxEvent.objects.get(pk=e.pk).aggregate_id for e in events] == ["2", "3"]
    assert events[0].pk < events[1].pk and not events[0]._state.adding


def test_rows_inserted_with_a_save_that_finds_no_row_are_rolled_back_with_it():
    from django.db import transaction

    (event,) = insert([_event(1)])
    OutboxEvent.objects.filter(pk=event.pk).delete()
    event.attempts = 1
    with pytest.raises(DatabaseError), transaction.atomic():
        save_fields(event, ["attempts"], inserting=[[_event(2)]])
    assert not OutboxEvent.objects.filter(aggregate_id="2").exists()


@pytest.mark.django_db(transaction=True)
def test_rows_inserted_with_a_save_need_a_transaction():
    (event,) = insert([_event(1)])
    with pytest.raises(RuntimeError):
        save_fields(event, ["attempts"], inserting=[[_event(2)]])
    assert not OutboxEvent.objects.filter(aggregate_id="2").exists()
    assert save_fields(event, ["attempts"], inserting=[[]]) == [[]]  # nothing to insert: a plain save


def test_rows_inserted_with_a_save_go_to_the_saved_rows_database(monkeypatch):
    from django.db import transaction

    from shared import inserts

    (event,) = insert([_event(1)])
    real = inserts.router.db_for_write
    monkeypatch.setattr(  # the same router object serves both modules: only dead letters go elsewhere
        inserts.router,
        "db_for_write",
        lambda model, **hints: "elsewhere" if model is DeadLetter else real(model, **hints),
    )
    with pytest.raises(ValueError), transaction.atomic():
        save_fields(event, ["attempts"], inserting=[[DeadLetter(consumer="c", topic="t", raw="", error="x")]])
    assert not DeadLetter.objects.filter(error="x").exists()

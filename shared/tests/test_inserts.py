"""shared.inserts.insert: rows stored as bulk_create stores them, from one statement made once."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from shared.inserts import insert, insert_together
from shared.messaging.models import DeadLetter, OutboxEvent

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 26, 5, 0, tzinfo=dt.UTC)


def _event(n: int, **extra) -> OutboxEvent:
    return OutboxEvent(
        event_type="Thing",
        topic="things",
        aggregate_type="thing",
        aggregate_id=str(n),
        payload={"n": n, "nested": [1, {"a": "b"}]},
        occurred_at=AT,
        next_attempt_at=AT,
        **extra,
    )


def _stored(model, pk) -> dict:
    row = model.objects.get(pk=pk)
    return {f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields}


def test_rows_are_stored_as_bulk_create_stores_them_and_get_their_keys():
    made = insert([_event(1), _event(2, request_id="r-2", attempts=3)])
    twins = OutboxEvent.objects.bulk_create([_event(1), _event(2, request_id="r-2", attempts=3)])
    for row, twin in zip(made, twins, strict=True):
        assert row.pk is not None and not row._state.adding and row._state.db == "default"
        mine, theirs = _stored(OutboxEvent, row.pk), _stored(OutboxEvent, twin.pk)
        assert mine.pop("id") == row.pk
        theirs.pop("id")
        assert mine.pop("event_id") == row.event_id  # each row's own default
        assert theirs.pop("event_id") != row.event_id
        assert mine == theirs
    assert made[0].pk < made[1].pk  # the keys come back in the rows' order


def test_one_statement_for_many_rows():
    with CaptureQueriesContext(connection) as queries:
        rows = insert([_event(n) for n in range(5)])
    assert len(queries) == 1
    assert sorted(OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).values_list("aggregate_id", flat=True)) == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]


def test_auto_now_add_and_defaults_are_filled_in():
    before = dt.datetime.now(dt.UTC)
    (letter,) = insert([DeadLetter(consumer="c", topic="t", raw="{}", error="boom")])
    stored = DeadLetter.objects.get(pk=letter.pk)
    assert stored.created_at == letter.created_at and stored.created_at >= before
    assert (stored.state, stored.attempts, stored.event_id, stored.resolved_at) == (DeadLetter.State.OPEN, 0, "", None)


def test_rows_that_carry_their_key_keep_it():
    pk = 10_000_000 + uuid.uuid4().int % 1_000_000
    (row,) = insert([_event(7, id=pk)])
    assert row.pk == pk
    assert OutboxEvent.objects.get(pk=pk).aggregate_id == "7"


def test_refuses_what_it_cannot_write_as_one_statement():
    assert insert([]) == []
    with pytest.raises(TypeError):
        insert([_event(1), DeadLetter(consumer="c", topic="t", raw="", error="")])
    with pytest.raises(ValueError):
        insert([_event(1, id=99_000_001), _event(2)])


def test_groups_written_together_are_stored_as_apart_in_one_statement():
    pk = 20_000_000 + uuid.uuid4().int % 1_000_000
    with CaptureQueriesContext(connection) as queries:
        events, letters, keyed = insert_together(
            [_event(1), _event(2, attempts=3)],
            [DeadLetter(consumer="c", topic="t", raw="{}", error="boom")],
            [_event(3, id=pk)],
        )
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["WITH"]
    assert [e.aggregate_id for e in OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("pk")] == [
        "1",
        "2",
    ]
    assert events[0].pk < events[1].pk and OutboxEvent.objects.get(pk=events[1].pk).attempts == 3
    (letter,) = letters
    stored = DeadLetter.objects.get(pk=letter.pk)
    assert (stored.error, stored.created_at) == ("boom", letter.created_at)
    assert keyed[0].pk == pk and OutboxEvent.objects.get(pk=pk).aggregate_id == "3"
    for row in (*events, letter, *keyed):
        assert not row._state.adding and row._state.db == "default"


@pytest.mark.django_db(transaction=True)
def test_groups_written_together_commit_together_outside_a_transaction():
    events, letters = insert_together([_event(1)], [DeadLetter(consumer="c", topic="t", raw="", error="")])
    assert OutboxEvent.objects.filter(pk=events[0].pk).exists() and DeadLetter.objects.filter(pk=letters[0].pk).exists()
    with pytest.raises(IntegrityError):  # the second group breaks a rule: neither is written
        insert_together([_event(2)], [_event(3, event_id=events[0].event_id)])
    assert not OutboxEvent.objects.filter(aggregate_id__in=["2", "3"]).exists()


def test_together_refuses_what_insert_refuses_and_skips_empty_groups():
    assert insert_together() == [] and insert_together([], []) == [[], []]
    events, nothing = insert_together([_event(1)], [])
    assert events[0].pk is not None and nothing == []
    with pytest.raises(TypeError):
        insert_together([_event(1), DeadLetter(consumer="c", topic="t", raw="", error="")])
    with pytest.raises(ValueError):
        insert_together([_event(1, id=99_000_002), _event(2)])


@pytest.mark.parametrize("source_rows", [0, 1])
def test_insert_select_writes_its_rows_only_when_its_source_has_a_row(source_rows):
    from shared.inserts import insert_select, mark_saved

    first, second = _event(1), _event(2, published_at=None)  # a NULL of a typed column too
    sql, params = insert_select([(first, {}), (second, {"attempts": ("src.n * %s", [10])})], "src", returning=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH src AS (SELECT generate_series(1, %s) AS n), i AS ({sql}) SELECT id FROM i", [source_rows, *params]
        )
        keys = sorted(key for (key,) in cursor.fetchall())
    assert len(keys) == 2 * source_rows
    stored = list(OutboxEvent.objects.order_by("id").values_list("aggregate_id", "attempts", "published_at"))
    expected = [[("1", 0, None), ("2", 10 * n, None)] for n in range(1, source_rows + 1)]
    assert sorted(stored) == sorted(row for rows in expected for row in rows)
    if keys:
        mark_saved([first], keys[:1])
        assert first.pk == keys[0] and not first._state.adding

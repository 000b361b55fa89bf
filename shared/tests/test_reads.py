"""shared.reads.prepare: the rows Django's queryset gives, from SQL compiled once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from shared.inserts import insert
from shared.messaging.models import OutboxEvent
from shared.reads import prepare

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def _events(aggregate: str, n: int, topic: str = "things") -> list[OutboxEvent]:
    return insert(
        [
            OutboxEvent(
                event_type="Thing",
                topic=topic,
                aggregate_type="thing",
                aggregate_id=aggregate,
                payload={"n": i, "nested": [1, {"a": "b"}]},
                occurred_at=AT + dt.timedelta(seconds=i),
                next_attempt_at=AT,
            )
            for i in range(n)
        ]
    )


def _as_dicts(rows) -> list[dict]:
    return [{f.attname: getattr(r, f.attname) for f in OutboxEvent._meta.concrete_fields} for r in rows]


latest_of = prepare(
    lambda aggregate_id, topic: OutboxEvent.objects.filter(aggregate_id=aggregate_id, topic=topic).order_by("-id")[:2]
)


def test_rows_are_those_of_the_queryset_whatever_the_values():
    _events("a", 3)
    _events("b", 2)
    _events("b", 1, topic="other")
    for aggregate, topic in [("a", "things"), ("b", "things"), ("b", "other"), ("c", "things")]:
        expected = OutboxEvent.objects.filter(aggregate_id=aggregate, topic=topic).order_by("-id")[:2]
        got = latest_of(aggregate_id=aggregate, topic=topic)
        assert _as_dicts(got) == _as_dicts(expected)
        assert all(not r._state.adding and r._state.db == "default" for r in got)
    # converted as Django converts: the JSON payload a dict, the stamps aware datetimes
    (row, _) = latest_of(aggregate_id="a", topic="things")
    assert row.payload == {"n": 2, "nested": [1, {"a": "b"}]} and row.occurred_at == AT + dt.timedelta(seconds=2)


def test_the_sql_is_compiled_once_and_sent_as_one_statement(monkeypatch):
    (event,) = _events("a", 1)
    read = prepare(lambda pk: OutboxEvent.objects.filter(pk=pk)[:1])
    assert read.first(pk=-1) is None
    compiled = []
    monkeypatch.setattr("shared.reads._compile", lambda *a: compiled.append(a))
    with CaptureQueriesContext(connection) as queries:
        row = read.first(pk=event.pk)
    assert row.aggregate_id == "a" and compiled == [] and len(queries) == 1


def test_values_rows_are_dicts_of_the_named_fields():
    (event,) = _events("v", 1)
    read = prepare(lambda pk: OutboxEvent.objects.filter(pk=pk).values("aggregate_id", "payload", "occurred_at")[:1])
    assert read(pk=event.pk) == list(
        OutboxEvent.objects.filter(pk=event.pk).values("aggregate_id", "payload", "occurred_at")
    )


def test_a_locking_read_needs_a_transaction_and_locks(transactional_db):
    (event,) = _events("l", 1)
    read = prepare(lambda pk: OutboxEvent.objects.select_for_update().filter(pk=pk)[:1])
    with pytest.raises(TransactionManagementError):
        read(pk=event.pk)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert read.first(pk=event.pk).pk == event.pk
    assert queries[-1]["sql"].rstrip().endswith("FOR UPDATE")


def test_values_of_the_wrong_kind_or_name_are_refused():
    with pytest.raises(TypeError):
        latest_of(aggregate_id=1.5, topic="things")
    with pytest.raises(TypeError):
        latest_of(aggregate_id="a")


@pytest.mark.parametrize(
    "build",
    [
        lambda pk: OutboxEvent.objects.filter(pk=pk).only("id"),
        lambda pk: OutboxEvent.objects.filter(pk=pk).values_list("id", flat=True),
        lambda pk: OutboxEvent.objects.filter(attempts__gt=0).filter(pk__in=[pk, pk]).prefetch_related("x"),
        lambda day: OutboxEvent.objects.filter(occurred_at__day=day),  # no value the SQL takes as given
        lambda aggregate_id: OutboxEvent.objects.filter(aggregate_id__startswith=aggregate_id),  # becomes 'a%'
    ],
)
def test_reads_it_cannot_answer_as_the_queryset_would_are_refused(build):
    with pytest.raises(ValueError):
        prepare(build)(**{name: "a" if name == "aggregate_id" else 1 for name in build.__code__.co_varnames[:1]})


def test_threads_share_one_read(transactional_db):
    _events("t", 2)
    errors: list[BaseException] = []

    def read_many() -> None:
        try:
            for _ in range(50):
                assert len(latest_of(aggregate_id="t", topic="things")) == 2
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=read_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_moments_are_bound_as_given_and_must_be_aware():
    _events("m", 3)  # occurred AT, AT + 1 s, AT + 2 s
    read = prepare(lambda until: OutboxEvent.objects.filter(occurred_at__lte=until).order_by("id"))
    for until in (AT - dt.timedelta(seconds=1), AT + dt.timedelta(seconds=1), AT + dt.timedelta(days=1)):
        assert _as_dicts(read(until=until)) == _as_dicts(
            OutboxEvent.objects.filter(occurred_at__lte=until).order_by("id")
        )
    with pytest.raises(TypeError):
        read(until=dt.datetime(2026, 11, 26, 9, 0))  # naive: Django would have made it aware first

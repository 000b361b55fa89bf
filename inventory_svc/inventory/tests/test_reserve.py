"""The reserve path: all or nothing, limits, sale start, idempotency, and failures on either side."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from inventory import gate, selectors, services
from inventory.models import Reservation, StockMovement
from inventory.tests.conftest import counts, gate_avail, reserve
from shared.errors import IllegalTransition, LimitExceeded, NotOnSale, SoldOut, UpstreamUnavailable, ValidationFailed
from shared.messaging.models import OutboxEvent


def test_reserve_takes_units_in_gate_and_postgresql_and_records_everything(cloth):
    cloth(1, {11: 5, 12: 3})
    answer = reserve(100, 7, (11, 2), (12, 1))
    assert answer["status"] == "RESERVED" and answer["order_id"] == 100
    assert counts(11) == (3, 2, 0) and counts(12) == (2, 1, 0)
    assert gate_avail(1, 11) == 3 and gate_avail(1, 12) == 2
    assert StockMovement.objects.filter(order_id=100, kind="reserve").count() == 2
    types = list(OutboxEvent.objects.values_list("event_type", flat=True))
    assert "StockReserved" in types and "StockChanged" in types


def test_a_reservation_writes_its_events_in_one_statement_reserved_first(cloth):
    """StockReserved and StockChanged go into the outbox in one INSERT: one round trip less per winner."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cloth(1, {11: 5, 12: 3})
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with CaptureQueriesContext(connection) as captured:
        reserve(100, 7, (11, 2), (12, 1))
    outbox = OutboxEvent._meta.db_table
    assert sum(f'INSERT INTO "{outbox}"' in q["sql"] for q in captured.captured_queries) == 1
    assert list(OutboxEvent.objects.filter(id__gt=before).order_by("id").values_list("event_type", flat=True)) == [
        "StockReserved",
        "StockChanged",
    ]


def test_a_reservation_writes_its_rows_in_two_statements_around_its_counters(cloth):
    """The reservation with its ledger rows, then each variant's counters (locked until the
    commit, so nothing else comes between them and the commit), then its lines with its events."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cloth(1, {11: 5, 12: 3})
    with CaptureQueriesContext(connection) as captured:
        reserve(100, 7, (11, 2), (12, 1))
    writes = [q["sql"] for q in captured.captured_queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "WITH")]
    assert [sql.split()[0] for sql in writes] == ["WITH", "UPDATE", "UPDATE", "WITH"], writes
    reservation = Reservation.objects.get(order_id=100)
    assert sorted(reservation.lines.values_list("variant_id", "quantity")) == [(11, 2), (12, 1)]
    assert StockMovement.objects.filter(order_id=100, kind="reserve").count() == 2
    assert counts(11) == (3, 2, 0) and counts(12) == (2, 1, 0)


def test_a_one_line_reservation_is_one_statement_with_no_transaction_around_it(cloth):
    """A drop's order has one line: its counters, reservation, line, ledger row and both events
    in one statement, which commits on its own; the counters' row is locked only while it runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cloth(1, {11: 5, 12: 3})
    selectors.cloth_of_variants([11])  # the variant's cloth is known from now on, as in a drop
    with CaptureQueriesContext(connection) as captured:
        reserve(100, 7, (11, 2))
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["WITH"], captured.captured_queries
    assert counts(11) == (3, 2, 0) and gate_avail(1, 11) == 3


def test_a_one_line_reservation_writes_what_a_reservation_of_several_lines_writes(cloth):
    from inventory.models import StockItem
    from shared.contracts import to_payload
    from shared.contracts.inventory import StockChanged, StockLevel

    cloth(1, {11: 5, 12: 5, 13: 5})
    reserve(100, 7, (11, 2))  # one line: one statement
    reserve(200, 8, (12, 2), (13, 1))  # two: the transaction
    for order_id, member_id, lines in ((100, 7, [(11, 2)]), (200, 8, [(12, 2), (13, 1)])):
        reservation = Reservation.objects.get(order_id=order_id)
        assert (reservation.member_id, reservation.cloth_ids, reservation.state) == (member_id, [1], "ACTIVE")
        assert sorted(reservation.lines.values_list("variant_id", "cloth_id", "quantity")) == [
            (v, 1, q) for v, q in lines
        ]
        ledger = StockMovement.objects.filter(order_id=order_id).values_list(
            "variant_id", "cloth_id", "kind", "quantity", "cause", "actor"
        )
        assert sorted(ledger) == [(v, 1, "reserve", q, "order", f"member:{member_id}") for v, q in lines]
        reserved = OutboxEvent.objects.get(event_type="StockReserved", aggregate_id=str(order_id))
        assert reserved.payload["lines"] == [{"variant_id": v, "cloth_id": 1, "quantity": q} for v, q in lines]
        assert reserved.payload["member_id"] == member_id
        changed = OutboxEvent.objects.get(
            event_type="StockChanged", id__gt=reserved.id, id__lt=reserved.id + 2
        )  # the next row
        items = [StockItem.objects.get(variant_id=v) for v, _ in lines]
        assert changed.payload == to_payload(
            StockChanged(
                cloth_id=1,
                variants=[
                    StockLevel(variant_id=i.variant_id, available=i.available, total=i.total, version=i.version)
                    for i in items
                ],
            )
        )
        assert (changed.topic, changed.aggregate_type, changed.aggregate_id) == ("inventory", "stock", "1")
        assert changed.event_id != reserved.event_id and changed.occurred_at == reserved.occurred_at


def test_a_one_line_reservation_the_counters_refuse_writes_nothing(cloth, redis_db):
    cloth(1, {11: 1})
    redis_db.hincrby(gate.Keys(1).avail, 11, 5)  # the gate wrongly believes 6 are free
    reserve(100, 7, (11, 1))
    before = (Reservation.objects.count(), StockMovement.objects.count(), OutboxEvent.objects.count())
    with pytest.raises(SoldOut):
        reserve(101, 8, (11, 1))
    assert (Reservation.objects.count(), StockMovement.objects.count(), OutboxEvent.objects.count()) == before
    assert counts(11) == (0, 1, 0)


def test_a_one_line_reservation_whose_order_was_written_meanwhile_moves_no_counter(cloth):
    """Two calls for one order both past the gate (the first died before PostgreSQL, say): the
    second's statement meets the first's reservation and is undone whole, counters included."""
    import datetime as dt

    from django.db import IntegrityError
    from django.utils import timezone

    from inventory.services.counters import Line

    cloth(1, {11: 5})
    write = services.reservations._write_one_line
    deadline = timezone.now() + dt.timedelta(minutes=10)
    write(order_id=100, member_id=7, line=Line(11, 1, 2), deadline=deadline)
    rows = (StockMovement.objects.count(), OutboxEvent.objects.count())
    with pytest.raises(IntegrityError):
        write(order_id=100, member_id=7, line=Line(11, 1, 2), deadline=deadline)
    assert counts(11) == (3, 2, 0)
    assert (StockMovement.objects.count(), OutboxEvent.objects.count()) == rows


def test_retry_with_same_order_id_answers_the_same_and_takes_nothing_more(cloth):
    cloth(1, {11: 5})
    first = reserve(100, 7, (11, 2))
    again = reserve(100, 7, (11, 2))
    assert again["status"] == first["status"] == "RESERVED"
    assert again["lines"] == first["lines"]
    assert counts(11) == (3, 2, 0) and gate_avail(1, 11) == 3


def test_a_multi_size_order_takes_all_sizes_or_none(cloth):
    cloth(1, {11: 5, 12: 1})
    with pytest.raises(SoldOut) as exc:
        reserve(100, 7, (11, 2), (12, 2))
    assert exc.value.extra["variant_id"] == 12
    assert counts(11) == (5, 0, 0) and counts(12) == (1, 0, 0)
    assert gate_avail(1, 11) == 5 and gate_avail(1, 12) == 1
    assert not Reservation.objects.exists()


def test_an_order_over_several_clothes_gives_back_the_earlier_ones_when_a_later_fails(cloth):
    cloth(1, {11: 5})
    cloth(2, {21: 0})
    with pytest.raises(SoldOut):
        reserve(100, 7, (11, 1), (21, 1))
    assert gate_avail(1, 11) == 5 and counts(11) == (5, 0, 0)
    assert gate.snapshot(1)["bought"] == {} and gate.snapshot(1)["orders"] == set()


def test_repeated_clicks_cannot_pass_the_member_limit(cloth):
    cloth(1, {11: 10}, limit=2)
    reserve(100, 7, (11, 1))
    reserve(101, 7, (11, 1))
    for order_id in range(102, 110):
        with pytest.raises(LimitExceeded):
            reserve(order_id, 7, (11, 1))
    assert counts(11) == (8, 2, 0) and gate_avail(1, 11) == 8
    reserve(200, 8, (11, 2))  # another member is not affected


def test_limit_is_checked_before_anything_is_taken(cloth):
    cloth(1, {11: 10, 12: 10}, limit=2)
    with pytest.raises(LimitExceeded):
        reserve(100, 7, (11, 2), (12, 1))
    assert gate_avail(1, 11) == 10 and gate_avail(1, 12) == 10


def test_released_units_count_again_toward_the_limit(cloth):
    cloth(1, {11: 10}, limit=1)
    reserve(100, 7, (11, 1))
    services.release_reservation(order_id=100, reason="cancelled")
    reserve(101, 7, (11, 1))


def test_nothing_is_sold_before_the_sale_starts(cloth):
    cloth(1, {11: 5}, starts_in=3600)
    with pytest.raises(NotOnSale):
        reserve(100, 7, (11, 1))
    assert gate_avail(1, 11) == 5


def test_unknown_variant_is_a_validation_error_naming_the_line(cloth):
    cloth(1, {11: 5})
    with pytest.raises(ValidationFailed) as exc:
        reserve(100, 7, (11, 1), (999, 1))
    assert "lines.1.variant_id" in exc.value.fields


def test_a_sold_out_answer_touches_no_postgresql(cloth, django_assert_num_queries):
    cloth(1, {11: 1})
    reserve(100, 7, (11, 1))
    with django_assert_num_queries(0), pytest.raises(SoldOut):
        reserve(101, 8, (11, 1))


def test_postgresql_failing_after_the_gate_said_yes_gives_the_units_back(cloth, monkeypatch):
    cloth(1, {11: 5})

    def broken(**kwargs):
        raise OperationalError("database went away")

    monkeypatch.setattr(services.reservations, "_write_reservation", broken)
    monkeypatch.setattr(services.reservations, "_write_one_line", broken)
    with pytest.raises(UpstreamUnavailable):
        reserve(100, 7, (11, 2))
    assert gate_avail(1, 11) == 5 and gate.snapshot(1)["orders"] == set() and gate.snapshot(1)["bought"] == {}
    monkeypatch.undo()
    reserve(100, 7, (11, 2))  # the order can try again
    assert counts(11) == (3, 2, 0)


def test_gate_ahead_of_postgresql_answers_sold_out_and_never_oversells(cloth, redis_db):
    cloth(1, {11: 1})
    redis_db.hincrby(gate.Keys(1).avail, 11, 5)  # the gate wrongly believes 6 are free
    reserve(100, 7, (11, 1))
    with pytest.raises(SoldOut):
        reserve(101, 8, (11, 1))
    assert counts(11) == (0, 1, 0)
    # the units PostgreSQL refused are not handed back to the gate: it counted them wrongly
    assert gate_avail(1, 11) == 4


def test_a_wiped_gate_is_loaded_from_postgresql_on_the_next_reserve(cloth, redis_db):
    cloth(1, {11: 3})
    reserve(100, 7, (11, 2))
    redis_db.flushdb()
    with pytest.raises(SoldOut):
        reserve(101, 8, (11, 2))
    assert gate_avail(1, 11) == 1
    assert gate.snapshot(1)["orders"] == {100}
    reserve(102, 8, (11, 1))
    assert counts(11) == (0, 3, 0)


def test_a_reserve_arriving_after_its_release_takes_nothing(cloth):
    cloth(1, {11: 3})
    services.release_reservation(order_id=100, reason="order_not_placed")
    with pytest.raises(IllegalTransition):
        reserve(100, 7, (11, 1))
    assert counts(11) == (3, 0, 0) and gate_avail(1, 11) == 3


def test_retry_after_release_is_refused_and_takes_nothing(cloth):
    cloth(1, {11: 3})
    reserve(100, 7, (11, 1))
    services.release_reservation(order_id=100, reason="cancelled")
    with pytest.raises(IllegalTransition):
        reserve(100, 7, (11, 1))
    assert counts(11) == (3, 0, 0) and gate_avail(1, 11) == 3


def test_retry_with_other_lines_answers_the_first_reservation_and_takes_nothing_more(cloth):
    cloth(1, {11: 3})
    cloth(2, {21: 3})
    reserve(100, 7, (21, 1))
    again = reserve(100, 7, (11, 1))
    assert [ln["variant_id"] for ln in again["lines"]] == [21]
    assert gate_avail(1, 11) == 3 and counts(11) == (3, 0, 0)
    assert gate.snapshot(1)["orders"] == set() and gate.snapshot(1)["bought"] == {}

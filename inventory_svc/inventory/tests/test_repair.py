"""The gate repair: records PostgreSQL contradicts are finished, young ones are left alone."""

from __future__ import annotations

import json
from io import StringIO

import pytest
import redis
from django.core.management import call_command

from inventory import gate, selectors, services
from inventory.models import Reservation, ReservationState
from inventory.tests.conftest import counts, gate_avail, reserve
from shared.errors import IllegalTransition, SoldOut


def _gate_agrees() -> bool:
    _, diffs = selectors.invariant_differences(with_gate=True)
    return not diffs


def _age(cloth_id: int, order_id: int, seconds: float, redis_db) -> None:
    redis_db.hset(gate.Keys(cloth_id).record(order_id), "at", gate.now_ms() - int(seconds * 1000))


def _failing_gate_step(monkeypatch, name: str) -> None:
    def broken(**kwargs):
        raise redis.ConnectionError("redis went away")

    monkeypatch.setattr(gate, name, broken)


def test_a_unit_the_gate_took_for_an_order_never_written_comes_back_once_old(cloth, redis_db):
    cloth(1, {11: 3})
    # The process died between the gate's yes and the PostgreSQL commit.
    assert gate.reserve(cloth_id=1, order_id=100, member_id=7, lines=[(11, 2)]) == ["OK"]
    assert gate_avail(1, 11) == 1 and counts(11) == (3, 0, 0)

    assert services.repair_gate()["total"] == 0  # young: maybe a request still under way
    assert gate_avail(1, 11) == 1

    _age(1, 100, 300, redis_db)
    assert services.repair_gate() == {"repaired": {"never_written": 1}, "total": 1}
    assert gate_avail(1, 11) == 3 and gate.snapshot(1)["bought"] == {} and _gate_agrees()
    # the order id is spent: a late retry of its reserve takes nothing
    assert Reservation.objects.get(order_id=100).state == ReservationState.RELEASED
    with pytest.raises(IllegalTransition):
        reserve(100, 7, (11, 2))
    assert gate_avail(1, 11) == 3 and counts(11) == (3, 0, 0)
    assert services.repair_gate()["total"] == 0  # nothing more to do


def test_a_release_whose_gate_step_failed_is_finished(cloth, redis_db, monkeypatch):
    cloth(1, {11: 3})
    reserve(100, 7, (11, 2))
    _failing_gate_step(monkeypatch, "release")
    services.release_reservation(order_id=100, reason="cancelled")
    monkeypatch.undo()
    assert counts(11) == (3, 0, 0) and gate_avail(1, 11) == 1  # two units unsellable
    assert services.repair_gate(min_age_seconds=0) == {"repaired": {"released": 1}, "total": 1}
    assert gate_avail(1, 11) == 3 and _gate_agrees()
    # the release path itself finishing later gives back nothing more
    services.release_reservation(order_id=100, reason="cancelled")
    assert gate_avail(1, 11) == 3


def test_a_sell_whose_gate_step_failed_is_finished(cloth, monkeypatch):
    cloth(1, {11: 3})
    reserve(100, 7, (11, 1))
    _failing_gate_step(monkeypatch, "sell")
    services.sell_reservation(order_id=100)
    monkeypatch.undo()
    assert gate.records(1)[0].state == "R"
    assert services.repair_gate(min_age_seconds=0) == {"repaired": {"sold": 1}, "total": 1}
    assert gate.records(1)[0].state == "S" and gate_avail(1, 11) == 2 and _gate_agrees()


def test_a_return_whose_gate_step_failed_is_finished(cloth, monkeypatch):
    cloth(1, {11: 3})
    reserve(100, 7, (11, 1))
    services.sell_reservation(order_id=100)
    _failing_gate_step(monkeypatch, "give_back_sold")
    services.return_reservation(order_id=100, reason="refunded")
    monkeypatch.undo()
    assert counts(11) == (3, 0, 0) and gate_avail(1, 11) == 2
    assert services.repair_gate(min_age_seconds=0) == {"repaired": {"returned": 1}, "total": 1}
    assert gate_avail(1, 11) == 3 and gate.snapshot(1)["bought"] == {} and _gate_agrees()


def test_a_release_landing_during_a_rebuild_is_finished(cloth):
    cloth(1, {11: 3})
    reserve(100, 7, (11, 1))
    stale = gate.state_from_database(1)  # the rebuild's snapshot, taken before the release
    services.release_reservation(order_id=100, reason="cancelled")
    k = gate.Keys(1)
    gate._script("load")(keys=[k.avail, k.rule, k.bought, k.orders], args=[json.dumps(stale), k.record_prefix])
    assert gate_avail(1, 11) == 2 and counts(11) == (3, 0, 0)
    assert services.repair_gate()["repaired"] == {"released": 1}  # a loaded record has no age: repaired at once
    assert gate_avail(1, 11) == 3 and _gate_agrees()


def test_records_that_agree_with_postgresql_are_left_alone(cloth):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 1))
    reserve(101, 8, (11, 1))
    services.sell_reservation(order_id=101)
    before = gate.snapshot(1)
    assert services.repair_gate(min_age_seconds=0) == {"repaired": {}, "total": 0}
    assert gate.snapshot(1) == before


def test_an_undo_never_gives_back_a_record_someone_else_already_released(cloth):
    cloth(1, {11: 3})
    assert gate.reserve(cloth_id=1, order_id=100, member_id=7, lines=[(11, 1)]) == ["OK"]
    assert gate.release(cloth_id=1, order_id=100) == ["OK"]  # the repair, say
    assert gate.forget(cloth_id=1, order_id=100, give_back=[11]) == ["NOOP"]  # the reserve's own undo
    assert gate_avail(1, 11) == 3


def _gate_missed(cloth_id: int, order_id: int, variant_id: int, quantity: int, redis_db) -> None:
    """The gate as a rebuild leaves it that read PostgreSQL just before ``order_id``'s reserve committed."""
    k = gate.Keys(cloth_id)
    member = redis_db.hget(k.record(order_id), "member")
    redis_db.delete(k.record(order_id))
    redis_db.srem(k.orders, order_id)
    redis_db.hincrby(k.avail, variant_id, quantity)
    redis_db.hincrby(k.bought, member, -quantity)


def test_a_reservation_a_rebuild_missed_leaves_no_unit_stuck_once_released(cloth, redis_db):
    cloth(1, {11: 1})
    reserve(100, 7, (11, 1))
    # Redis wiped mid-drop; the rebuild read PostgreSQL a moment before order 100 was written.
    _gate_missed(1, 100, 11, 1, redis_db)
    assert gate_avail(1, 11) == 1 and counts(11) == (0, 1, 0)
    # The gate says yes to another buyer, PostgreSQL refuses: sold out, and the gate keeps
    # the unit it was ahead by.
    with pytest.raises(SoldOut):
        reserve(101, 8, (11, 1))
    assert gate_avail(1, 11) == 0
    # Order 100 expires: PostgreSQL frees the unit, the gate has no record of it to give back.
    services.release_reservation(order_id=100, reason="deadline_passed")
    assert counts(11) == (1, 0, 0) and gate_avail(1, 11) == 0
    assert not _gate_agrees()

    report = services.repair_gate()
    assert report["repaired"] == {"reloaded": 1}
    assert gate_avail(1, 11) == 1 and _gate_agrees()
    reserve(102, 9, (11, 1))  # the unit sells again
    assert counts(11) == (0, 1, 0) and gate_avail(1, 11) == 0
    assert services.repair_gate()["total"] == 0


def test_a_gate_that_only_looks_different_while_requests_are_in_flight_is_not_reloaded(cloth, redis_db):
    cloth(1, {11: 3})
    # The gate's yes is made, PostgreSQL's commit is a moment away: young records are the request's own.
    assert gate.reserve(cloth_id=1, order_id=100, member_id=7, lines=[(11, 1)]) == ["OK"]
    assert services.repair_gate()["total"] == 0
    assert gate.snapshot(1)["orders"] == {100}


def test_records_are_read_whole_in_slices_and_an_ended_one_is_left_out(cloth, redis_db, monkeypatch):
    cloth(1, {11: 5, 12: 5})
    reserve(100, 7, (11, 2), (12, 1))
    reserve(101, 8, (12, 1))
    gate.load(1)  # 100 and 101 come back from PostgreSQL: records with no time of reservation
    assert gate.reserve(cloth_id=1, order_id=102, member_id=9, lines=[(11, 1)]) == ["OK"]
    redis_db.sadd(gate.Keys(1).orders, 103)  # the set still names an order whose record just ended
    monkeypatch.setattr(gate, "_RECORDS_PER_READ", 2)
    found = {r.order_id: r for r in gate.records(1)}
    assert sorted(found) == [100, 101, 102]
    assert (found[100].state, found[100].member_id, sorted(found[100].lines), found[100].at_ms) == (
        gate.RecordState.RESERVED,
        7,
        [(11, 2), (12, 1)],
        None,
    )
    assert found[102].lines == [(11, 1)] and found[102].member_id == 9
    assert abs(found[102].at_ms - gate.now_ms()) < 60_000
    assert [r.order_id for r in gate.records(1, of=[101, 103])] == [101]


def test_the_drift_read_reads_only_the_records_postgresql_does_not_hold(cloth, monkeypatch):
    cloth(1, {11: 5})
    for order_id in (100, 101, 102):
        reserve(order_id, order_id, (11, 1))
    assert gate.reserve(cloth_id=1, order_id=200, member_id=9, lines=[(11, 1)]) == ["OK"]  # its commit under way
    asked = []
    real = gate.records
    monkeypatch.setattr(gate, "records", lambda cloth_id, **kw: asked.append(set(kw["of"])) or real(cloth_id, **kw))
    pg_avail, gate_avail, pg_orders, gate_orders = selectors.gate_against_postgresql(1, young_after_ms=0)
    # a drop's sold and reserved records, which PostgreSQL holds too, are not read one by one
    assert asked == [{200}]
    assert (pg_orders, gate_orders, gate_avail, pg_avail) == ({100, 101, 102}, {100, 101, 102}, {11: 2}, {11: 2})


def test_the_command_prints_what_it_repaired(cloth, redis_db):
    cloth(1, {11: 3})
    gate.reserve(cloth_id=1, order_id=100, member_id=7, lines=[(11, 1)])
    out = StringIO()
    call_command("repair_gate", "--min-age", "0", "--cloth", "1", stdout=out)
    assert json.loads(out.getvalue()) == {"repaired": {"never_written": 1}, "total": 1}
    assert gate_avail(1, 11) == 3

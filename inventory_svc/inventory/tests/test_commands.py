"""Operator commands: check_invariants reports differences, rebuild_stock repairs the gate, restock."""

from __future__ import annotations

import json
import threading

import pytest
from django.core.management import CommandError, call_command

from inventory import gate, selectors
from inventory.models import StockItem
from inventory.tests.conftest import counts, gate_avail, reserve


def test_check_invariants_lists_differences_and_exits_non_zero(cloth, redis_db, capsys):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 1))
    call_command("check_invariants")
    capsys.readouterr()
    redis_db.hincrby(gate.Keys(1).avail, 11, 2)
    StockItem.objects.filter(variant_id=11).update(total=9)  # a hand edit the ledger does not know
    with pytest.raises(SystemExit) as exc:
        call_command("check_invariants")
    assert exc.value.code == 1
    checks = {d["check"] for d in json.loads(capsys.readouterr().out)["differences"]}
    assert {"total = ledger", "gate available = PostgreSQL available"} <= checks


def test_a_gate_step_still_in_flight_is_not_reported_but_a_lasting_difference_is(cloth, redis_db):
    cloth(1, {11: 5})
    avail = gate.Keys(1).avail
    redis_db.hset(avail, 11, 4)  # PostgreSQL has committed a release; the gate's step is on its way
    assert [d["expected"] for d in selectors._gate_differences(1, reads=1)] == [5]
    catch_up = threading.Timer(0.1, lambda: redis_db.hset(avail, 11, 5))
    catch_up.start()
    try:
        assert selectors._gate_differences(1, reads=3, pause=0.2) == []
    finally:
        catch_up.join()
    redis_db.hset(avail, 11, 4)  # and this time it never comes
    assert [(d["expected"], d["actual"]) for d in selectors._gate_differences(1, reads=3, pause=0.05)] == [(5, 4)]


def test_rebuild_stock_restores_the_gate_from_postgresql(cloth, redis_db, capsys):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    redis_db.hset(gate.Keys(1).avail, 11, 50)
    call_command("rebuild_stock", "--cloth", "1")
    assert gate_avail(1, 11) == 3 and gate.snapshot(1)["bought"] == {7: 2}
    with pytest.raises(CommandError):
        call_command("rebuild_stock", "--cloth", "404")


def test_restock_command_goes_through_the_ledger(cloth, capsys):
    cloth(1, {11: 5})
    call_command("restock", "--variant", "11", "--quantity", "4", "--reason", "truck")
    assert counts(11) == (9, 0, 0) and gate_avail(1, 11) == 9
    call_command("restock", "--variant", "11", "--quantity", "-2", "--correct", "--reason", "damaged")
    assert counts(11) == (7, 0, 0)
    with pytest.raises(CommandError):
        call_command("restock", "--variant", "11", "--quantity", "0")
    with pytest.raises(CommandError):
        call_command("restock", "--variant", "404", "--quantity", "1")

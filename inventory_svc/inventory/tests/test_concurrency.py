"""Real threads against the real Redis and PostgreSQL: exactly the stock is reserved, never more."""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from django.core.management import call_command
from django.db import connection

from inventory import services
from inventory.models import Reservation, StockMovement
from inventory.tests.conftest import counts, gate_avail
from shared.errors import LimitExceeded, SoldOut
from shared.redis import get_redis


def _race(attempts: list[tuple[int, int, list[dict]]], *, threads: int = 24, midway=None) -> dict[str, int]:
    outcome = {"won": 0, "sold_out": 0, "limit": 0}
    lock = threading.Lock()
    done = itertools.count()

    def attempt(args) -> None:
        order_id, member_id, lines = args
        try:
            try:
                services.reserve_stock(order_id=order_id, member_id=member_id, lines=lines)
                key = "won"
            except SoldOut:
                key = "sold_out"
            except LimitExceeded:
                key = "limit"
            with lock:
                outcome[key] += 1
            if midway and next(done) == len(attempts) // 3:
                midway()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(attempt, attempts))
    return outcome


def _invariants_hold(capsys) -> None:
    capsys.readouterr()
    call_command("check_invariants")
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_many_members_racing_for_fifty_units_get_exactly_fifty(cloth, capsys):
    cloth(1, {11: 50})
    attempts = [(1000 + i, i, [{"variant_id": 11, "quantity": 1}]) for i in range(300)]
    outcome = _race(attempts)
    assert outcome["won"] == 50 and outcome["sold_out"] == 250
    assert counts(11) == (0, 50, 0) and gate_avail(1, 11) == 0
    assert Reservation.objects.filter(state="ACTIVE").count() == 50
    assert StockMovement.objects.filter(kind="reserve").count() == 50
    _invariants_hold(capsys)


def test_multi_size_orders_racing_never_leave_half_an_order(cloth, capsys):
    cloth(1, {11: 30, 12: 20})
    attempts = [
        (1000 + i, i, [{"variant_id": 11, "quantity": 1}, {"variant_id": 12, "quantity": 1}]) for i in range(120)
    ]
    outcome = _race(attempts)
    assert outcome["won"] == 20
    assert counts(11) == (10, 20, 0) and counts(12) == (0, 20, 0)
    _invariants_hold(capsys)


def test_one_member_clicking_many_times_at_once_gets_only_the_limit(cloth, capsys):
    cloth(1, {11: 50}, limit=1)
    attempts = [(1000 + i, 7, [{"variant_id": 11, "quantity": 1}]) for i in range(100)]
    outcome = _race(attempts)
    assert outcome["won"] == 1 and outcome["limit"] == 99
    assert counts(11) == (49, 1, 0)
    _invariants_hold(capsys)


def test_redis_wiped_mid_drop_is_rebuilt_with_no_unit_oversold(cloth, capsys):
    cloth(1, {11: 40})
    attempts = [(1000 + i, i, [{"variant_id": 11, "quantity": 1}]) for i in range(240)]
    outcome = _race(attempts, midway=lambda: get_redis().flushdb())
    assert outcome["won"] == 40
    assert counts(11) == (0, 40, 0)
    call_command("rebuild_stock")
    assert gate_avail(1, 11) == 0
    _invariants_hold(capsys)

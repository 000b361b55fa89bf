"""The cost benchmark's reading of /proc and its arithmetic (a fake /proc; no stack needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cost  # noqa: E402
import proccpu  # noqa: E402


def stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int, cutime=0, cstime=0, start=1000) -> str:
    # fields 3..22: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    #               utime stime cutime cstime priority nice threads itrealvalue starttime
    return (
        f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 "
        f"{utime} {stime} {cutime} {cstime} 20 0 4 0 {start} 1000000 500 18446744073709551615 0 0 0 0 0 0 0"
    )


# ----------------------------------------------------------------------------- parsing


def test_stat_fields():
    st = proccpu.parse_stat(stat_line(42, "gunicorn", 7, utime=150, stime=30, cutime=5, cstime=2, start=999))
    assert (st.pid, st.comm, st.state, st.ppid) == (42, "gunicorn", "S", 7)
    assert (st.utime, st.stime, st.cutime, st.cstime, st.starttime) == (150, 30, 5, 2, 999)
    assert st.own_ticks == 180 and st.ticks == 187


@pytest.mark.parametrize("comm", ["tmux: server", "a) b", "(x) (y)", ") 1 2 3 (", "python3 -c x"])
def test_stat_command_names_with_spaces_and_parentheses(comm):
    st = proccpu.parse_stat(stat_line(7, comm, 1, utime=11, stime=22, start=5))
    assert st.comm == comm
    assert (st.ppid, st.utime, st.stime, st.starttime) == (1, 11, 22, 5)


def test_a_real_stat_line():
    line = (
        "5230 (gunicorn) S 5212 5209 5209 0 -1 4194624 46581 0 0 0 1234 321 0 0 20 0 5 0 "
        "50211 318550016 25161 18446744073709551615 1 1 0 0 0 0 0 16781312 16902 0 0 0 17 1 0 0 0 0 0\n"
    )
    st = proccpu.parse_stat(line)
    assert (st.pid, st.ppid, st.utime, st.stime, st.starttime) == (5230, 5212, 1234, 321, 50211)


def test_machine_cpu_line():
    busy, total = proccpu.parse_cpu_line("cpu  100 5 50 1000 20 3 2 7 9 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n")
    # guest (9) is already inside user: not added twice; idle and iowait are not busy
    assert total == 100 + 5 + 50 + 1000 + 20 + 3 + 2 + 7
    assert busy == total - 1000 - 20


def test_postgres_backend_titles():
    assert proccpu.postgres_database(["postgres: 15/main: postgres shop_order 127.0.0.1(40028) idle"]) == "shop_order"
    assert proccpu.postgres_database(["postgres: 15/main: checkpointer "]) is None
    assert proccpu.postgres_database(["postgres: 15/main: autovacuum launcher "]) is None
    assert (
        proccpu.postgres_database(["postgres: 15/main: postgres test_shop_order_x 127.0.0.1(5) SELECT"])
        == "test_shop_order_x"
    )


def test_group_names():
    assert proccpu.group_name("gateway") == "gateway"
    assert proccpu.group_name("order") == "order web"
    assert proccpu.group_name("order-worker") == "order celery"
    assert proccpu.group_name("order-consumer") == "order consumer"
    assert proccpu.group_name("kafka") == "broker"


def test_programs_with_the_same_command_are_told_apart_by_their_folder():
    specs = proccpu.program_specs(
        [
            ("order", "/v/bin/gunicorn config.wsgi:application --bind 127.0.0.1:8003", "/r/order_svc"),
            ("order-consumer", "/v/bin/python manage.py consume", "/r/order_svc"),
            ("catalog-consumer", "/v/bin/python manage.py consume", "/r/catalog_svc"),
        ]
    )
    consume = ["/v/bin/python", "manage.py", "consume"]
    assert proccpu.match_program(consume, "/r/catalog_svc", specs).group == "catalog consumer"
    assert proccpu.match_program(consume, "/r/order_svc", specs).group == "order consumer"
    # a script started through its interpreter: the configured command is the running one's tail
    running = ["/v/bin/python", "/v/bin/gunicorn", "config.wsgi:application", "--bind", "127.0.0.1:8003"]
    assert proccpu.match_program(running, "/r/order_svc", specs).group == "order web"
    assert proccpu.match_program(["/bin/sleep", "5"], "/", specs) is None


def test_handled_events_are_read_from_the_decorators():
    source = "@handles(\"OrderPaid\", topic=\"orders\")\ndef f(e): ...\n@handles('StockChanged', topic='inventory')\n"
    assert cost.handled_events(source) == {("OrderPaid", "orders"), ("StockChanged", "inventory")}


# ----------------------------------------------------------------------------- a fake /proc


class FakeProc(proccpu.ProcFS):
    def __init__(self, procs: dict[int, tuple[str, int, int, int, int, int]], cmdlines=None, cwds=None, cpu=(0, 0)):
        self.procs = procs  # pid -> (comm, ppid, utime, stime, cutime, starttime)
        self.cmdlines = cmdlines or {}
        self.cwds = cwds or {}
        self.cpu = cpu

    def pids(self):
        return list(self.procs)

    def stat(self, pid):
        comm, ppid, ut, st, cut, start = self.procs[pid]
        return proccpu.parse_stat(stat_line(pid, comm, ppid, ut, st, cutime=cut, start=start))

    def cmdline(self, pid):
        return self.cmdlines.get(pid, [])

    def cwd(self, pid):
        return self.cwds.get(pid, "")

    def machine(self):
        return self.cpu


SPECS = proccpu.program_specs(
    [
        ("gateway", "/v/bin/gunicorn gw", "/r/gateway_svc"),
        ("order-consumer", "/v/bin/python manage.py consume", "/r/order_svc"),
    ]
)
CMDS = {
    10: ["/v/bin/python", "/v/bin/gunicorn", "gw"],
    11: ["/v/bin/python", "/v/bin/gunicorn", "gw"],
    12: ["/v/bin/python", "/v/bin/gunicorn", "gw"],
    20: ["/v/bin/python", "manage.py", "consume"],
    30: ["redis-server", "127.0.0.1:6379"],
    41: ["postgres: 15/main: postgres shop_order 127.0.0.1(1) idle"],
    42: ["postgres: 15/main: postgres test_other 127.0.0.1(2) idle"],
    43: ["postgres: 15/main: postgres shop_order 127.0.0.1(3) idle"],
    44: ["postgres: 15/main: walwriter "],
}
CWDS = {20: "/r/order_svc"}


def stack(procs, cpu=(0, 0), exclude=()):
    return proccpu.StackProcesses(
        supervisord_pid=1,
        specs=SPECS,
        databases={"shop_order": "postgres order"},
        exclude_pids=set(exclude),
        proc=FakeProc(procs, CMDS, CWDS, cpu),
    )


BEFORE = {
    1: ("supervisord", 0, 50, 10, 999, 1),
    10: ("gunicorn", 1, 100, 20, 0, 5),
    11: ("gunicorn", 10, 300, 50, 0, 6),
    12: ("gunicorn", 10, 200, 40, 0, 6),
    20: ("python", 1, 80, 20, 0, 7),
    30: ("redis-server", 0, 500, 100, 0, 2),
    40: ("postgres", 0, 1000, 100, 5000, 3),
    41: ("postgres", 40, 30, 10, 0, 8),
    42: ("postgres", 40, 70, 0, 0, 8),
    43: ("postgres", 40, 5, 5, 0, 8),
    44: ("postgres", 40, 9, 1, 0, 4),
}


def test_snapshot_groups_programs_their_children_postgres_and_redis():
    snap = stack(BEFORE).snapshot()
    assert snap.ticks["gateway"] == 120 + 350 + 240
    assert snap.ticks["order consumer"] == 100
    assert snap.ticks["supervisord"] == 60  # its reaped children (restarted programs) are not its own
    assert snap.ticks["redis"] == 600
    assert snap.ticks["postgres order"] == 40 + 10
    # the server, its own processes and other databases' connections: shared
    assert snap.ticks[proccpu.SHARED_GROUPS[0]] == 1100 + 5000 + 70 + 10
    assert snap.roots["gateway"] == (10, 5)


def test_our_own_connections_are_left_out():
    snap = stack(BEFORE, exclude=[43]).snapshot()
    assert snap.ticks["postgres order"] == 40
    assert 43 not in snap.pids[proccpu.SHARED_GROUPS[0]]


def test_usage_counts_ended_and_new_children():
    after = dict(BEFORE)
    # worker 12 ended (its 260 ticks went to the master's cutime), a new worker 13 used 70
    del after[12]
    after[10] = ("gunicorn", 1, 110, 20, 260, 5)
    after[11] = ("gunicorn", 10, 400, 50, 0, 6)
    after[13] = ("gunicorn", 10, 60, 10, 0, 9)
    after[41] = ("postgres", 40, 45, 15, 0, 8)
    before_snap, after_snap = stack(BEFORE, cpu=(1000, 4000)).snapshot(), stack(after, cpu=(1500, 4400)).snapshot()
    u = proccpu.usage(before_snap, after_snap, wall_seconds=2.0)
    tick = 1 / proccpu.CLK_TCK
    # master +10, worker 11 +100, worker 12: 240 -> ended with 260 (+20), worker 13 +70
    assert u.seconds["gateway"] == pytest.approx(200 * tick)
    assert u.seconds["postgres order"] == pytest.approx(20 * tick)
    assert u.seconds["redis"] == 0
    assert u.machine_busy_seconds == pytest.approx(500 * tick)
    assert u.restarted == [] and u.ended_connections == {}
    assert u.total() == pytest.approx(220 * tick)


def test_a_restarted_program_is_left_out_and_named():
    after = dict(BEFORE)
    after[10] = ("gunicorn", 1, 5, 1, 0, 77)  # same pid, new start time: not the same process
    u = proccpu.usage(stack(BEFORE).snapshot(), stack(after).snapshot(), wall_seconds=1.0)
    assert "gateway" in u.restarted and "gateway" not in u.seconds


def test_an_ended_database_connection_is_counted():
    after = dict(BEFORE)
    del after[41]
    u = proccpu.usage(stack(BEFORE).snapshot(), stack(after).snapshot(), wall_seconds=1.0)
    assert u.ended_connections == {"postgres order": 1}


def test_per_unit_and_percent_of_a_core():
    u = proccpu.Usage(
        seconds={"gateway": 1.5, "order web": 0.5, proccpu.SHARED_GROUPS[0]: 9.0},
        wall_seconds=20.0,
        machine_busy_seconds=30.0,
        restarted=[],
        ended_connections={},
    )
    assert u.total() == 2.0 and u.total(include_shared=True) == 11.0
    assert proccpu.per_unit_ms(u, 1000) == {"gateway": 1.5, "order web": 0.5, proccpu.SHARED_GROUPS[0]: 9.0}
    assert proccpu.per_unit_ms(u, 0) == {}
    assert proccpu.percent_of_core(u)["gateway"] == pytest.approx(7.5)
    # 10 % of a core for 4 s is 400 ms; over 200 units, 2 ms each
    assert proccpu.idle_share_ms({"gateway": 10.0}, 4.0, 200) == {"gateway": pytest.approx(2.0)}


def test_the_table_compares_with_the_budgets():
    results = {
        "gateway-404": {
            "class": "gateway-404",
            "unit": "request",
            "units": 100,
            "total": 0.5,
            "budget": 0.35,
            "within_budget": False,
            "window_seconds": 1.0,
            "ms_per_unit": {"gateway": 0.45, proccpu.SHARED_GROUPS[0]: 3.0, "redis": 0.05},
        },
        "idle": {
            "class": "idle",
            "unit": "% of a core",
            "total": 2.0,
            "budget": 3.0,
            "within_budget": True,
            "window_seconds": 30.0,
            "percent_of_core": {"order celery": 1.5, proccpu.SHARED_GROUPS[0]: 40.0, "redis": 0.5},
        },
    }
    cost.idle_shares(results)
    assert results["gateway-404"]["idle_share_ms_per_unit"] == pytest.approx(2.0 * 10 / 100)
    table = cost.format_table(results)
    assert "OVER" in table.splitlines()[2] and "gateway 0.45" in table
    assert "ok" in table.splitlines()[3] and proccpu.SHARED_GROUPS[0] not in table


def test_web_sizing_is_read_from_either_servers_command_line():
    import stack

    gunicorn = stack.Program(
        "gateway",
        "/v/bin/gunicorn config.wsgi:application -c python:shared.gunicorn_conf --bind 127.0.0.1:8000 "
        "--workers 3 --threads 4 --worker-class gthread",
    )
    granian = stack.Program(
        "order",
        "/v/bin/granian --interface wsgi config.wsgi:application --host 127.0.0.1 --port 8003 "
        "--workers 2 --blocking-threads 2 --backlog 2048",
    )
    assert gunicorn.web == {
        "server": "gunicorn",
        "bind": "127.0.0.1:8000",
        "workers": 3,
        "threads": 4,
        "worker_class": "gthread",
    }
    assert granian.web == {
        "server": "granian",
        "bind": "127.0.0.1:8003",
        "workers": 2,
        "threads": 2,
        "worker_class": "wsgi",
    }
    assert stack.Program("order-worker", "/v/bin/celery -A config worker -B -Q order").web is None


def test_the_per_member_order_limit_must_be_raised_or_off_for_the_ordering_classes():
    assert not cost._order_limit_raised("")  # the default: 1 attempt per 0.5 s
    assert not cost._order_limit_raised("5")
    assert cost._order_limit_raised("0") and cost._order_limit_raised("100000")
    assert set(cost.ORDERING) <= set(cost.CLASSES)


def test_the_gateways_address_limit_must_be_raised_or_off_for_the_public_reads():
    assert not cost._address_limit_raised("", "")  # the defaults: 50 a second
    assert not cost._address_limit_raised("10", "50")
    assert cost._address_limit_raised("1000", "") and cost._address_limit_raised("", "20000")
    assert cost._address_limit_raised("0", "") and cost._address_limit_raised("", "0")  # off
    assert not cost._address_limit_raised("lots", "")
    assert set(cost.PUBLIC_READS) <= set(cost.CLASSES)


@pytest.mark.parametrize(
    "command, expected",
    [
        (
            "/v/bin/granian --interface wsgi config.wsgi:application --host 127.0.0.1 --port 8002 --workers 2",
            "/v/bin/granian --interface wsgi config.wsgi:application --host 127.0.0.1 --port 4321 --workers 2",
        ),
        (
            "/v/bin/gunicorn config.wsgi:application --bind 127.0.0.1:8002 --workers 2 --name shop-catalog",
            "/v/bin/gunicorn config.wsgi:application --bind 127.0.0.1:4321 --workers 2 --name shop-catalog-cachecompare",
        ),
    ],
    ids=["granian", "gunicorn"],
)
def test_the_private_catalog_runs_the_stacks_command_on_another_port(command, expected):
    import cachecompare

    assert cachecompare.private_command(command, 4321) == expected.split()


def test_the_ordering_classes_stay_within_what_the_gateway_forwards_at_once():
    health = {
        "status": "ok",
        "admission": {
            "member": {"in_flight_limit": 1, "queue_limit": 1},
            "order": {"in_flight_limit": 3, "queue_limit": 8},
            "payment": {"in_flight_limit": 2, "queue_limit": 8},
        },
    }
    assert cost.forwarded_at_once(health) == 2  # the payment's in-flight limit, not the member's, and no waiting
    assert cost.forwarded_at_once({"status": "ok"}) is None  # a gateway without gates: no bound


def _run(total: float, order_web: float) -> dict:
    return {
        "class": "won-order",
        "unit": "order won",
        "units": 300,
        "total": total,
        "budget": 10.0,
        "within_budget": total <= 10.0,
        "window_seconds": 2.0,
        "ms_per_unit": {"order web": order_web, "gateway": total - order_web},
    }


def test_repeated_runs_report_each_classs_median_run_and_the_spread():
    rounds = [{"won-order": _run(9.7, 2.3)}, {"won-order": _run(5.8, 1.3)}, {"won-order": _run(12.1, 2.8)}]
    won = cost.median_runs(rounds)["won-order"]
    # the middle run as it was measured: its groups still add up to its total
    assert won["total"] == 9.7 and won["ms_per_unit"] == {"order web": 2.3, "gateway": pytest.approx(7.4)}
    assert won["within_budget"] is True
    assert won["runs_total"] == [9.7, 5.8, 12.1] and (won["total_min"], won["total_max"]) == (5.8, 12.1)
    assert "runs_total" not in rounds[0]["won-order"]  # the rounds' own records are left as measured
    table = cost.format_table({"won-order": won})
    assert "lowest-highest" in table.splitlines()[0]
    assert "9.700   5.800-12.100" in table.splitlines()[2]


def test_an_even_number_of_runs_reports_the_higher_middle_one():
    rounds = [{"won-order": _run(t, 1.0)} for t in (8.0, 11.0, 6.0, 10.5)]
    won = cost.median_runs(rounds)["won-order"]
    assert won["total"] == 10.5 and won["within_budget"] is False


def test_one_round_is_reported_as_measured_without_a_spread():
    rounds = [{"won-order": _run(9.7, 2.3)}]
    assert cost.median_runs(rounds) is rounds[0]
    assert "lowest-highest" not in cost.format_table(rounds[0])


def test_repeat_takes_one_or_more():
    assert cost.parse_args(["--repeat", "3"]).repeat == 3
    assert cost.parse_args([]).repeat == 1
    with pytest.raises(SystemExit):
        cost.parse_args(["--repeat", "0"])

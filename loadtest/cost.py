"""cost: CPU time per request, summed over every process of the running stack, one request class at a time.

    python manage_all.py loadtest cost [--only CLASS ...] [--count N] [--connections 12] [--repeat N]

For each class: prepare what it needs (members, tokens, a drop, orders to pay) and wait
until the stack is quiet; read every stack process's CPU ticks from ``/proc``; send a
fixed number of requests over keep-alive connections; wait until the outboxes are
drained, the consumers have caught up, the Celery queues are empty and the class's own
end state is reached (stock counts, shown stock, orders PAID); read the ticks again. The
difference, per process group, divided by the units answered, is the cost. The load
generator runs in this process and is not counted (its own cost is reported apart).

Classes and their units: gateway-404, detail-direct, detail-gateway, soldout-gateway
(per request), won-order (per order won, with everything it sets off), payment-completed
(per payment: ``POST /payment`` + ``PUT /payment/{id}``, until the order is PAID and the
unit sold), idle (% of a core over a fixed window). Budgets are those of the performance
plan; a benchmark, nothing asserts them.

The same code can cost a fifth to a half more in one run than in the next on a shared
machine. ``--repeat N`` measures every class N times, round after round, and reports each
class's median run (its groups as that run measured them) with the lowest and highest
totals beside it; every run is kept in ``summary.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import prepare  # noqa: E402
import proccpu  # noqa: E402
from stack import Stack, load_stack, machine  # noqa: E402

from shared.contracts.order import SOLD_STATES, OrderStatus  # noqa: E402
from shared.topology import SERVICES  # noqa: E402

HERE = Path(__file__).resolve().parent
CLASSES = (
    "idle",
    "gateway-404",
    "detail-direct",
    "detail-gateway",
    "soldout-gateway",
    "won-order",
    "payment-completed",
)
#: ms of CPU per unit; idle: % of one core
BUDGETS: dict[str, float] = {
    "gateway-404": 0.35,
    "detail-direct": 0.45,
    "detail-gateway": 0.9,
    "soldout-gateway": 1.0,
    "won-order": 10.0,
    "payment-completed": 10.0,
    "idle": 3.0,
}
UNITS = {
    "gateway-404": "request",
    "detail-direct": "request",
    "detail-gateway": "request",
    "soldout-gateway": "request",
    "won-order": "order won",
    "payment-completed": "payment completed",
    "idle": "% of a core",
}
DEFAULT_COUNTS = {
    "gateway-404": 4000,
    "detail-direct": 3000,
    "detail-gateway": 2000,
    "soldout-gateway": 2000,
    "won-order": 300,
    "payment-completed": 200,
}
CARD_OK = "4242424242424242"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="loadtest cost", description=__doc__.split("\n")[0])
    p.add_argument("--only", action="append", choices=CLASSES, help="measure this class (repeatable; default all)")
    p.add_argument("--count", type=int, help="units per class (default per class: 4000 ... 200)")
    p.add_argument("--connections", type=int, default=12, help="keep-alive connections (default 12)")
    p.add_argument("--client", choices=loadgen.CLIENTS, default="gevent", help="load generator (default gevent)")
    p.add_argument("--idle-seconds", type=float, default=30.0, help="the idle window (default 30 s)")
    p.add_argument("--members", type=int, default=16, help="members to prepare (default 16)")
    p.add_argument("--settle-timeout", type=float, default=120.0, help="seconds to wait for the stack to be quiet")
    p.add_argument("--stack", default="dev", help="which manage_all.py stack (dev)")
    p.add_argument(
        "--stack-dir", type=Path, help="the stack's run folder (default .run/<stack> of this checkout), e.g. another's"
    )
    p.add_argument("--out", type=Path, help="results folder (default loadtest/results/cost-<UTC time>)")
    p.add_argument(
        "--repeat", type=int, default=1, help="measure every class this many times, round after round (default 1)"
    )
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat takes 1 or more")
    args.classes = [c for c in CLASSES if c in (args.only or CLASSES)]
    return args


# ----------------------------------------------------------------------------- the stack's processes


def stack_processes(stack: Stack) -> proccpu.StackProcesses:
    run_dir = stack.run_dir or (stack.root / ".run" / stack.name)
    try:
        supervisord = int((run_dir / "supervisord.pid").read_text().strip())
    except (OSError, ValueError):
        raise SystemExit(f"no running supervisord for the {stack.name} stack ({run_dir}/supervisord.pid)") from None
    specs = proccpu.program_specs((p.name, p.command, p.directory) for p in stack.programs.values())
    databases = {}
    for service in SERVICES:
        url = stack.database_url(service)
        if url:
            databases[url.rsplit("/", 1)[1].split("?")[0]] = f"postgres {service}"
    redis_port = int(stack.redis_url.split("://", 1)[1].split("/")[0].rsplit(":", 1)[1])
    return proccpu.StackProcesses(supervisord, specs, databases, redis_port=redis_port)


# ----------------------------------------------------------------------------- is the stack quiet?


_HANDLES = re.compile(r"""@handles\(\s*["'](\w+)["']\s*,\s*topic\s*=\s*["']([\w.-]+)["']""")


def handled_events(source: str) -> set[tuple[str, str]]:
    """(event type, topic) pairs an ``events.py`` registers with ``@handles``."""
    return set(_HANDLES.findall(source))


def consumer_handles(stack: Stack) -> dict[str, set[str]]:
    """Event types each consumer applies, read from its service's ``events.py`` files in the stack's checkout."""
    out: dict[str, set[str]] = {}
    for name, program in stack.programs.items():
        if not name.endswith("-consumer"):
            continue
        types: set[str] = set()
        for f in Path(program.directory or stack.root / f"{name[: -len('-consumer')]}_svc").glob("*/events.py"):
            types |= {t for t, _ in handled_events(f.read_text(errors="replace"))}
        out[name[: -len("-consumer")]] = types
    return out


@dataclass
class Quiet:
    """Is the stack done with what was sent? Read on our own PostgreSQL and Redis connections.

    Done means: no outbox row waits to be published, every event published since the class
    started has been applied by every consumer that handles its type (its inbox,
    ``messaging_processedevent``, holds the event id, or it was dead-lettered), no Celery
    queue holds a task, and the class's own end state is reached; twice in a row, half a
    second apart. The broker is not asked (its reported offsets do not track batched
    records exactly), so the waiting costs the broker nothing; our PostgreSQL
    connections' backends are left out of the CPU figures.
    """

    stack: Stack
    conns: dict[str, Any] = field(default_factory=dict)
    backend_pids: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        import psycopg  # noqa: PLC0415
        import redis  # noqa: PLC0415

        for service in SERVICES:
            conn = psycopg.connect(self.stack.database_url(service), autocommit=True, connect_timeout=5)
            self.conns[service] = conn
            self.backend_pids.add(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        self.redis = redis.Redis.from_url(self.stack.redis_url, socket_timeout=5)
        self.handles = consumer_handles(self.stack)
        self.queues = [name[: -len("-worker")] for name in self.stack.programs if name.endswith("-worker")]

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()
        self.redis.close()

    def rows(self, service: str, sql: str, params: tuple = ()) -> list[tuple]:
        return self.conns[service].execute(sql, params).fetchall()

    def outbox(self) -> dict[str, int]:
        return {
            s: self.rows(s, "SELECT count(*) FROM messaging_outboxevent WHERE published_at IS NULL")[0][0]
            for s in SERVICES
        }

    def unapplied(self, since: float) -> dict[str, int]:
        """Per consumer: events published since ``since`` of a type it handles that it has not applied yet."""
        published: list[tuple[Any, str]] = []
        for s in SERVICES:
            published += self.rows(
                s,
                "SELECT event_id, event_type FROM messaging_outboxevent "
                "WHERE published_at IS NOT NULL AND occurred_at >= to_timestamp(%s)",
                (since,),
            )
        out = {}
        for consumer, types in sorted(self.handles.items()):
            ids = [eid for eid, etype in published if etype in types]
            if not ids:
                out[consumer] = 0
                continue
            done = self.rows(
                consumer,
                "SELECT count(DISTINCT event_id) FROM messaging_processedevent WHERE consumer = %s AND event_id = ANY(%s)",
                (consumer, ids),
            )[0][0]
            dead = self.rows(
                consumer,
                "SELECT count(DISTINCT event_id) FROM messaging_deadletter WHERE event_id = ANY(%s)",
                ([str(i) for i in ids],),
            )[0][0]
            out[consumer] = max(0, len(ids) - done - dead)
        return out

    def celery_queues(self) -> dict[str, int]:
        return {q: int(self.redis.llen(q)) for q in self.queues}

    def state(self, since: float) -> dict[str, Any]:
        return {"outbox": self.outbox(), "unapplied": self.unapplied(since), "celery_queues": self.celery_queues()}

    def wait(self, check=None, *, since: float, timeout: float, poll: float = 0.5) -> tuple[bool, float, dict]:
        """Until two polls in a row find everything done and ``check()`` (a class's end state) returns None."""
        started = time.monotonic()
        calm = 0
        while True:
            state = self.state(since)
            pending = check() if check else None
            if pending:
                state["waiting_for"] = pending
            busy = any(v for part in ("outbox", "unapplied", "celery_queues") for v in state[part].values())
            calm = calm + 1 if not pending and not busy else 0
            if calm >= 2:
                return True, time.monotonic() - started, state
            if time.monotonic() - started > timeout:
                return False, time.monotonic() - started, state
            time.sleep(poll)

    # ------------------------------------------------------------------ a drop's end state

    def stock_settled(self, variant_id: int) -> str | None:
        """None when inventory counts match the orders and the catalog shows what is left; else what differs."""
        inv = self.rows(
            "inventory", "SELECT total, reserved, sold FROM inventory_stockitem WHERE variant_id = %s", (variant_id,)
        )
        if not inv:
            return f"variant {variant_id} not in the inventory yet"
        total, reserved, sold = inv[0]
        want = self.rows(
            "order",
            "SELECT coalesce(sum(l.quantity) FILTER (WHERE o.status = ANY(%s)), 0), "
            "coalesce(sum(l.quantity) FILTER (WHERE o.status = %s), 0) "
            "FROM orders_orderline l JOIN orders_order o ON o.order_id = l.order_id WHERE l.variant_id = %s",
            ([str(s) for s in SOLD_STATES], str(OrderStatus.PENDING_PAYMENT), variant_id),
        )[0]
        if (sold, reserved) != (int(want[0]), int(want[1])):
            return f"inventory sold/reserved {sold}/{reserved}, orders say {want[0]}/{want[1]}"
        shown = self.rows("catalog", "SELECT shown_stock FROM catalog_variant WHERE id = %s", (variant_id,))
        if not shown or shown[0][0] != total - reserved - sold:
            return f"catalog shows {shown[0][0] if shown else None}, available {total - reserved - sold}"
        return None

    def orders_paid(self, order_ids: list[int]) -> str | None:
        if not order_ids:
            return None
        n = self.rows(
            "order",
            "SELECT count(*) FROM orders_order WHERE order_id = ANY(%s) AND status = %s",
            (order_ids, str(OrderStatus.PAID)),
        )[0][0]
        return None if n == len(order_ids) else f"{n}/{len(order_ids)} orders PAID"


# ----------------------------------------------------------------------------- preparation


@dataclass
class Drop:
    cloth_id: int
    variant_id: int


class Runner:
    def __init__(self, args: argparse.Namespace, stack: Stack, gateway: str, quiet: Quiet, log=print):
        self.args, self.stack, self.gateway, self.quiet, self.log = args, stack, gateway, quiet, log
        self.api = prepare.Api(gateway, pool=4)
        self.members: list[dict[str, Any]] = []
        self.pending: list[tuple[int, str]] = []  # (order_id, member's e-mail) placed and not yet paid
        self.paying: list[int] = []  # the payment class's orders still expected to be PAID
        self.since = time.time() - 1

    def fresh_members(self) -> list[dict[str, Any]]:
        """Members with tokens fresh enough for the next class (access tokens live minutes)."""
        self.members = prepare.prepare_members(self.stack, self.gateway, self.args.members, log=lambda m: self.log(m))
        if len(self.members) < 2:
            raise SystemExit("need at least 2 members")
        return self.members

    def auth(self, who: int | str) -> dict[str, str]:
        """Member ``who`` (an index, taken round the list, or an e-mail address)'s bearer header."""
        if isinstance(who, str):
            member = next(m for m in self.members if m["email"] == who)
        else:
            member = self.members[who % len(self.members)]
        return {"Authorization": f"Bearer {member['access_token']}"}

    def email(self, i: int) -> str:
        return self.members[i % len(self.members)]["email"]

    def create_drop(self, name: str, sizes: str, limit: int) -> Drop:
        now = dt.datetime.now(dt.UTC)
        drop = prepare.create_drop(
            self.stack,
            name=f"Loadtest cost {name} {now:%H%M%S}",
            price="39000",
            sizes=sizes,
            starts_at=now - dt.timedelta(seconds=1),
            limit=limit,
            category="loadtest-cost",
        )
        d = Drop(drop["cloth_id"], drop["variants"][0]["variant_id"])
        ok, _, state = self.wait(lambda: self.quiet.stock_settled(d.variant_id))
        if not ok:
            raise SystemExit(f"the drop {d.cloth_id} did not reach the inventory: {state}")
        return d

    def place(self, variant_id: int, member: int | str) -> tuple[int, dict[str, Any]]:
        r = self.api.call(
            "POST",
            "/orders/add",
            json={"lines": [{"variant_id": variant_id, "quantity": 1}]},
            headers=self.auth(member),
        )
        return r.status_code, (r.json() if r.content else {})

    def pay(self, order_id: int, member: int | str) -> None:
        r = self.api.call("POST", "/payment", json={"order_id": order_id}, headers=self.auth(member))
        if r.status_code != 201:
            raise SystemExit(f"POST /payment for {order_id}: {r.status_code} {r.text[:200]}")
        r = self.api.call("PUT", f"/payment/{order_id}", json={"card_number": CARD_OK}, headers=self.auth(member))
        if r.status_code != 200:
            raise SystemExit(f"PUT /payment/{order_id}: {r.status_code} {r.text[:200]}")

    def cancel_pending(self) -> None:
        """Orders left unpaid are cancelled (not measured), so none expires later in someone else's figures."""
        if not self.pending:
            return
        self.log(f"  cancelling {len(self.pending)} unpaid orders (not measured) ...")
        self.fresh_members()
        for order_id, member in self.pending:
            self.api.call("PUT", "/orders/cancel", json={"order_id": order_id}, headers=self.auth(member))
        self.pending = []
        self.since = time.time() - 1
        self.wait()

    # ------------------------------------------------------------------ classes: (base url, jobs, judge, end state)

    def setup(self, name: str, count: int):
        """What a class sends and how its answers and end state are judged."""
        catalog = self.stack.url("catalog")
        if name in ("gateway-404",):
            jobs = [[loadgen.Request("GET", "/loadtest-cost/not-a-route")] for _ in range(count)]
            return self.gateway, jobs, lambda job: job[-1].status == 404, None
        if name in ("detail-direct", "detail-gateway"):
            ids = prepare.cloth_ids(self.gateway, pages=1)[:20]
            if not ids:
                raise SystemExit("no clothes to read: python manage_all.py up loads demo clothes")
            base = catalog if name == "detail-direct" else self.gateway
            for cid in ids:  # warm the cache (not measured)
                self.api.http.get(f"{base}/cloth/detail/{cid}", timeout=10)
            jobs = [[loadgen.Request("GET", f"/cloth/detail/{ids[i % len(ids)]}")] for i in range(count)]
            return base, jobs, lambda job: job[-1].status == 200, None
        members = self.fresh_members()
        if name == "soldout-gateway":
            drop = self.create_drop("sold out", "M:1", limit=1)
            status, order = self.place(drop.variant_id, 0)
            if status != 201:
                raise SystemExit(f"could not buy the drop's only unit: {status} {order}")
            self.pay(order["order_id"], 0)
            ok, _, state = self.wait(
                lambda: self.quiet.orders_paid([order["order_id"]]) or self.quiet.stock_settled(drop.variant_id)
            )
            if not ok:
                raise SystemExit(f"the drop's only unit was not sold: {state}")
            buyers = range(1, len(members))
            body = {"lines": [{"variant_id": drop.variant_id, "quantity": 1}]}
            jobs = [
                [loadgen.Request("POST", "/orders/add", body, self.auth(buyers[i % len(buyers)]))] for i in range(count)
            ]
            return (
                self.gateway,
                jobs,
                lambda job: job[-1].status == 409 and job[-1].code == "sold_out",
                None,
            )
        if name == "won-order":
            drop = self.create_drop("won", f"S:{max(count * 2, 1000)}", limit=0)
            body = {"lines": [{"variant_id": drop.variant_id, "quantity": 1}]}
            jobs = [[loadgen.Request("POST", "/orders/add", body, self.auth(i))] for i in range(count)]
            self.won_drop = drop
            return (
                self.gateway,
                jobs,
                lambda job: job[-1].status == 201,
                lambda: self.quiet.stock_settled(drop.variant_id),
            )
        if name == "payment-completed":
            drop = getattr(self, "won_drop", None)
            if drop is None or len(self.pending) < count:
                drop = self.create_drop("paid", f"S:{max(count * 2, 1000)}", limit=0)
                self.log(f"  placing {count} orders to pay (not measured) ...")
                for i in range(count):
                    status, order = self.place(drop.variant_id, i)
                    if status != 201:
                        raise SystemExit(f"could not place an order to pay: {status} {order}")
                    self.pending.append((order["order_id"], self.email(i)))
                self.wait(lambda: self.quiet.stock_settled(drop.variant_id))
            to_pay, self.pending = self.pending[:count], self.pending[count:]
            jobs = [
                [
                    loadgen.Request("POST", "/payment", {"order_id": oid}, self.auth(m)),
                    loadgen.Request("PUT", f"/payment/{oid}", {"card_number": CARD_OK}, self.auth(m)),
                ]
                for oid, m in to_pay
            ]
            # Narrowed after the run to the payments that went through (measure): an order whose
            # payment the gateway refused (503 overloaded) stays unpaid, so nothing waits for it.
            self.paying = [oid for oid, _ in to_pay]
            return (
                self.gateway,
                jobs,
                lambda job: [a.status for a in job] == [201, 200],
                lambda: self.quiet.orders_paid(self.paying) or self.quiet.stock_settled(drop.variant_id),
            )
        raise ValueError(name)

    # ------------------------------------------------------------------ one measurement

    def wait(self, check=None) -> tuple[bool, float, dict[str, Any]]:
        return self.quiet.wait(check, since=self.since, timeout=self.args.settle_timeout)

    def measure(self, name: str, procs: proccpu.StackProcesses) -> dict[str, Any]:
        self.log(f"\n{name}: preparing ...")
        self.since = time.time() - 1  # events of this class (its preparation included) must all be applied
        if name == "idle":
            target, jobs, judge, end_state = None, [], None, None
        else:
            count = self.args.count or DEFAULT_COUNTS[name]
            target, jobs, judge, end_state = self.setup(name, count)
        ok, _, state = self.wait()  # what the preparation set off is done
        if not ok:
            self.log(f"  warning: the stack was not quiet before the run: {state}")
        before, t0 = procs.snapshot(), time.monotonic()
        load = None
        if name == "idle":
            self.log(f"  idle window of {self.args.idle_seconds:.0f} s ...")
            time.sleep(self.args.idle_seconds)
        else:
            connections = self.args.connections
            if name in ORDERING:  # within what the gateway forwards at once (README, "Overload")
                health = self.api.http.get(self.gateway + "/health", timeout=5).json()
                connections = min(connections, forwarded_at_once(health) or connections)
            self.log(f"  sending {len(jobs)} x {UNITS[name]} over {connections} connections ...")
            load = loadgen.run(target, jobs, connections=connections, client=self.args.client)
            if name == "won-order":
                for i, job in enumerate(load.answers):
                    if job[-1].status == 201:
                        self.pending.append((json.loads(job[-1].body)["order_id"], self.email(i)))
            if name == "payment-completed":
                self.paying = [oid for oid, job in zip(self.paying, load.answers, strict=True) if judge(job)]
        settled, settle_seconds, state = self.wait(end_state)
        after, t1 = procs.snapshot(), time.monotonic()
        use = proccpu.usage(before, after, t1 - t0)
        result: dict[str, Any] = {
            "class": name,
            "unit": UNITS[name],
            "budget": BUDGETS[name],
            "window_seconds": round(use.wall_seconds, 2),
            "settled": settled,
            "settle_seconds": round(settle_seconds, 2),
            "state_after": state,
            "cpu_seconds": {g: round(s, 3) for g, s in sorted(use.seconds.items())},
            "stack_cpu_seconds": round(use.total(), 3),
            "machine_busy_seconds": round(use.machine_busy_seconds, 2),
            "restarted_during_run": use.restarted,
            "postgres_connections_ended": use.ended_connections,
        }
        generator = load.generator_cpu_seconds if load else 0.0
        # Everything else the machine did meanwhile (other people's tests, builds): how noisy the figure is.
        result["rest_of_machine_cpu_seconds"] = round(
            use.machine_busy_seconds - use.total(include_shared=True) - generator, 2
        )
        if name == "idle":
            pct = proccpu.percent_of_core(use)
            result["percent_of_core"] = {g: round(v, 2) for g, v in pct.items()}
            result["total"] = round(sum(v for g, v in pct.items() if g not in proccpu.SHARED_GROUPS), 2)
        else:
            assert load is not None and judge is not None
            units = sum(1 for job in load.answers if job and judge(job))
            result.update(
                {
                    "units": units,
                    "sent": load.jobs,
                    "requests": load.requests,
                    "answers": dict(load.outcomes),
                    "load_seconds": round(load.wall_seconds, 2),
                    "units_per_second": round(units / load.wall_seconds, 1) if load.wall_seconds else None,
                    "generator_ms_per_request": round(load.generator_ms_per_request or 0, 3),
                }
            )
            ms = proccpu.per_unit_ms(use, units)
            result["ms_per_unit"] = {g: round(v, 3) for g, v in sorted(ms.items(), key=lambda kv: -kv[1])}
            result["total"] = round(sum(v for g, v in ms.items() if g not in proccpu.SHARED_GROUPS), 3)
            if units < load.jobs:
                self.log(
                    f"  warning: {load.jobs - units} of {load.jobs} answers were not the expected ones: {dict(load.outcomes)}"
                )
        result["within_budget"] = result["total"] <= BUDGETS[name]
        if not settled:
            self.log(f"  warning: not settled after {settle_seconds:.0f} s: {state}")
        if use.restarted:
            self.log(f"  warning: restarted during the run, left out: {', '.join(use.restarted)}")
        return result


# ----------------------------------------------------------------------------- output


def idle_shares(results: dict[str, dict[str, Any]]) -> None:
    """Each class's share of the idle stack's own CPU over its window, when the idle class was measured."""
    idle = results.get("idle")
    if not idle:
        return
    for name, r in results.items():
        if name == "idle" or not r.get("units"):
            continue
        shares = proccpu.idle_share_ms(idle["percent_of_core"], r["window_seconds"], r["units"])
        r["idle_share_ms_per_unit"] = round(sum(v for g, v in shares.items() if g not in proccpu.SHARED_GROUPS), 3)


def median_runs(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each class's median run over the rounds, with every run's total beside it.

    The run itself stands for the class (its groups add up to its total), not a median
    per group. With an even count, the higher of the two middle runs: a figure is not
    made to look better than half the runs. Adds ``runs_total`` (in the rounds' order),
    ``total_min`` and ``total_max`` to each; one round is returned as it is.
    """
    if len(rounds) == 1:
        return rounds[0]
    out: dict[str, dict[str, Any]] = {}
    for name in rounds[0]:
        runs = [r[name] for r in rounds if name in r]
        ranked = sorted(runs, key=lambda r: r["total"])
        chosen = dict(ranked[len(ranked) // 2])
        totals = [r["total"] for r in runs]
        chosen.update(runs_total=totals, total_min=min(totals), total_max=max(totals))
        out[name] = chosen
    return out


def format_class(r: dict[str, Any]) -> str:
    lines = []
    if r["class"] == "idle":
        lines.append(f"idle: {r['total']:.1f} % of a core over {r['window_seconds']:.0f} s (budget {r['budget']:g} %)")
        rows = sorted(r["percent_of_core"].items(), key=lambda kv: -kv[1])
        lines += [f"  {g:<28} {v:7.2f} %" for g, v in rows if abs(v) >= 0.005]
        lines.append(f"  (the rest of the machine used {r['rest_of_machine_cpu_seconds']:.1f} CPU s meanwhile)")
        return "\n".join(lines)
    lines.append(
        f"{r['class']}: {r['units']} x {r['unit']} in {r['load_seconds']:.1f} s ({r['units_per_second']}/s), "
        f"window {r['window_seconds']:.1f} s; load generator {r['generator_ms_per_request']:.3f} ms/request (not counted)"
    )
    lines.append(f"  {'process group':<28} {'CPU s':>8} {'ms/' + r['unit']:>14}")
    for g, v in r["ms_per_unit"].items():
        if abs(r["cpu_seconds"].get(g, 0)) < 0.005:
            continue
        mark = "  (shared, not in total)" if g in proccpu.SHARED_GROUPS else ""
        lines.append(f"  {g:<28} {r['cpu_seconds'][g]:8.2f} {v:14.3f}{mark}")
    lines.append(f"  {'total':<28} {r['stack_cpu_seconds']:8.2f} {r['total']:14.3f}   budget {r['budget']:g}")
    lines.append(f"  (the rest of the machine used {r['rest_of_machine_cpu_seconds']:.1f} CPU s meanwhile)")
    return "\n".join(lines)


def format_table(results: dict[str, dict[str, Any]]) -> str:
    ranges = any("runs_total" in r for r in results.values())
    spread = f" {'lowest-highest':>15}" if ranges else ""
    head = (
        f"{'class':<20} {'unit':<18} {'n':>6} {'total':>9}{spread} {'idle in it':>10} {'budget':>7}  {'':<6} top groups"
    )
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        if name == "idle":
            own = {g: v for g, v in r["percent_of_core"].items() if g not in proccpu.SHARED_GROUPS}
            top = sorted(own.items(), key=lambda kv: -kv[1])[:3]
            tops = ", ".join(f"{g} {v:.1f}" for g, v in top)
            n = f"{r['window_seconds']:.0f}s"
        else:
            top = [(g, v) for g, v in r["ms_per_unit"].items() if g not in proccpu.SHARED_GROUPS][:3]
            tops = ", ".join(f"{g} {v:.2f}" for g, v in top)
            n = str(r["units"])
        verdict = "ok" if r["within_budget"] else "OVER"
        idle = r.get("idle_share_ms_per_unit")
        idle_s = f"{idle:10.3f}" if idle is not None else f"{'':>10}"
        span = f" {r['total_min']:7.3f}-{r['total_max']:<7.3f}" if "runs_total" in r else f" {'':>15}"
        lines.append(
            f"{name:<20} {r['unit']:<18} {n:>6} {r['total']:9.3f}{span if ranges else ''} {idle_s} {r['budget']:7g}  "
            f"{verdict:<6} {tops}"
        )
    if ranges:
        lines.append("total: each class's median run of the rounds; lowest-highest: every run's total")
    return "\n".join(lines)


#: The classes that place orders through the gateway, many per member and second.
ORDERING = ("soldout-gateway", "won-order", "payment-completed")


def forwarded_at_once(health: dict[str, Any], services: tuple[str, ...] = ("order", "payment")) -> int | None:
    """What one gateway process forwards at once to the least of ``services`` (its in-flight limit).

    Read from the gateway's ``/health`` (its ``admission`` block); None when it does not say.
    The ordering classes send over at most this many connections, so none waits at a gate
    (a wait is bounded by time, and on a slow machine it runs out) and none is refused as
    overloaded: the benchmark measures orders, not refusals and the holds they set.
    """
    gates = health.get("admission") or {}
    sizes = [
        int(g["in_flight_limit"])
        for name, g in gates.items()
        if name in services and isinstance(g, dict) and "in_flight_limit" in g
    ]
    return min(sizes) if sizes else None


#: The classes that read a public route through the gateway, thousands a second from one address.
PUBLIC_READS = ("detail-gateway",)


def _address_limit_raised(scale: str, per_address: str) -> bool:
    """Whether the gateway's per-address limit on public routes lets the benchmark through:
    ``RATE_ANONYMOUS_PER_IP`` (50 a second unless set; 0 is off) times ``RATE_LIMIT_SCALE``
    (1 unless set; 0 or less is off)."""
    try:
        factor = float(scale) if scale else 1.0
        count = int(per_address) if per_address else 50
    except ValueError:
        return False
    return factor <= 0 or count <= 0 or count * factor >= 10_000


def _order_limit_raised(attempts: str) -> bool:
    """Whether the stack's per-member order limit lets the benchmark through (0 is off)."""
    try:
        return int(attempts) == 0 or int(attempts) >= 10_000
    except ValueError:
        return False


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    stack = load_stack(args.stack, args.stack_dir)
    gateway = stack.url("gateway").rstrip("/")
    if "127.0.0.1" not in gateway:
        raise SystemExit("load tests only go to this machine (127.0.0.1)")
    for attempt in range(30):
        try:
            if prepare.Api(gateway, pool=1).http.get(gateway + "/health", timeout=5).status_code == 200:
                break
        except OSError:
            pass
        print(f"the gateway at {gateway} is not healthy yet; retrying ({attempt + 1}/30) ...", flush=True)
        time.sleep(10)
    else:
        raise SystemExit(f"the gateway at {gateway} is not healthy: python manage_all.py up / status")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or HERE / "results" / f"cost-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    notes = []
    scale = stack.setting("member", "RATE_LIMIT_SCALE")
    if not scale:
        notes.append(
            "RATE_LIMIT_SCALE is not set on the stack's member service: joining new members stops at 100 "
            "e-mail codes per 10 minutes (export RATE_LIMIT_SCALE=1000; python3 manage_all.py restart member). "
            f"This benchmark needs only {args.members} members, kept between runs."
        )
    for n in notes:
        print(f"note: {n}", flush=True)
    ordering = [c for c in (args.only or CLASSES) if c in ORDERING]
    attempts = stack.setting("gateway", "RATE_ORDER_ATTEMPTS_PER_MEMBER")
    if ordering and not _order_limit_raised(attempts):
        raise SystemExit(
            f"{', '.join(ordering)} place orders from {args.members} members far faster than the gateway's "
            "per-member order limit lets a buyer click (RATE_ORDER_ATTEMPTS_PER_MEMBER, 1 per 0.5 s). Raise it on "
            "the stack, which keeps the count on the measured path: export RATE_ORDER_ATTEMPTS_PER_MEMBER=100000; "
            "python3 manage_all.py restart gateway"
        )
    reads = [c for c in (args.only or CLASSES) if c in PUBLIC_READS]
    gateway_scale = stack.setting("gateway", "RATE_LIMIT_SCALE")
    if reads and not _address_limit_raised(gateway_scale, stack.setting("gateway", "RATE_ANONYMOUS_PER_IP")):
        raise SystemExit(
            f"{', '.join(reads)} read a public route thousands of times a second from this one address; the "
            "gateway answers all but 50 a second per address 429 (RATE_ANONYMOUS_PER_IP times RATE_LIMIT_SCALE, "
            f"which is {gateway_scale or 'not set'} on the gateway). Raise it on the stack: export "
            "RATE_LIMIT_SCALE=1000; python3 manage_all.py restart gateway"
        )
    print(f"cost: results in {out}", flush=True)

    procs = stack_processes(stack)
    quiet = Quiet(stack)
    procs.exclude_pids = set(quiet.backend_pids)
    runner = Runner(args, stack, gateway, quiet)
    rounds: list[dict[str, dict[str, Any]]] = []
    try:
        for n in range(args.repeat):
            if args.repeat > 1:
                print(f"round {n + 1} of {args.repeat}", flush=True)
            rounds.append({})
            for name in args.classes:
                rounds[-1][name] = runner.measure(name, procs)
                print(format_class(rounds[-1][name]), flush=True)
            runner.cancel_pending()
    finally:
        quiet.close()
    for measured in rounds:
        idle_shares(measured)
    results = median_runs(rounds)
    summary = {
        "scenario": "cost",
        "started_utc": stamp,
        "command": "python3 manage_all.py loadtest cost " + " ".join(argv),
        "gateway": gateway,
        "budgets_ms_per_unit": BUDGETS,
        "classes": results,
        "repeat": args.repeat,
        "runs": rounds if args.repeat > 1 else None,
        "load_generator": {
            "client": args.client,
            "connections": args.connections,
            "description": f"{args.client} client, {args.connections} keep-alive connections, in the measuring "
            "process on the same machine (not counted)",
        },
        "notes": notes,
        "stack": stack.sizing(),
        "machine": machine(),
        "clock_ticks_per_second": proccpu.CLK_TCK,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print()
    print(format_table(results))
    print(
        "\nms of CPU per unit over all the stack's processes (PostgreSQL: the stack's own connections); "
        "'idle in it': what the idle stack alone uses over the same window, per unit (when idle was measured)"
    )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

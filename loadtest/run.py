"""Run one load-test scenario end to end: prepare, load with locust, check the invariants, report.

    python manage_all.py loadtest drop [--users 2000 --duration 30 --units 500]
    python manage_all.py loadtest drop --fairness [--hammerers 0.1]   polite buyers against hammerers
    python manage_all.py loadtest seed [--users 100 --rate 500 --duration 60]
    python manage_all.py loadtest browse [--compare-cache]
    python manage_all.py loadtest hop
    python manage_all.py loadtest cost [--only CLASS]   CPU per request (loadtest/cost.py)

Members, tokens and clothes are prepared before the clock starts; locust runs headless
(FastHttpUser, ``--processes`` to use more cores) and writes its CSV and HTML report into
``loadtest/results/<scenario>-<UTC time>/`` with ``summary.json`` and PNG plots. The exit
status is non-zero when an invariant broke or a 5xx answer was seen.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import invariants  # noqa: E402
import prepare  # noqa: E402
import report  # noqa: E402
from stack import ROOT, Stack, load_stack, machine  # noqa: E402

from shared.contracts.order import OrderStatus  # noqa: E402

HERE = Path(__file__).resolve().parent
SCENARIOS = ("seed", "drop", "browse", "hop")
DEFAULTS: dict[str, dict[str, Any]] = {
    "seed": {"users": 100, "rate": 500.0, "duration": 60},
    "drop": {"users": 2000, "rate": None, "duration": 30},
    "browse": {"users": 50, "rate": None, "duration": 30},
    "hop": {"users": 50, "rate": None, "duration": 30},
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="loadtest/run.py", description=__doc__.split("\n")[0])
    p.add_argument("scenario", choices=SCENARIOS)
    p.add_argument("--users", type=int, help="concurrent users (default per scenario)")
    p.add_argument(
        "--rate",
        type=float,
        help="total requests/s to offer (paced users); default: seed 500, others as fast as the users go",
    )
    p.add_argument("--duration", type=int, help="seconds of load (drop: seconds after the sale opens)")
    p.add_argument("--spawn-rate", type=float, help="users started per second (default: all within ~2 s)")
    p.add_argument("--processes", type=int, default=1, help="locust processes (2 uses both cores; default 1)")
    p.add_argument("--gateway", default=None, help="gateway URL (default: the stack's)")
    p.add_argument("--stack", default="dev", help="which manage_all.py stack (dev)")
    p.add_argument("--mail-dir", type=Path, help="where the stack writes e-mails (default: the stack's)")
    p.add_argument("--out", type=Path, help="results folder (default loadtest/results/<scenario>-<UTC time>)")
    p.add_argument("--members", type=int, help="distinct members to prepare (default: one per user)")
    p.add_argument("--settle-timeout", type=float, default=120.0, help="seconds to wait for the saga to settle")
    p.add_argument(
        "--request-log",
        action="store_true",
        help="also write every request (sent at, ms, status, name, member) to requests-<pid>.tsv in the results folder",
    )
    d = p.add_argument_group("drop")
    d.add_argument("--units", type=int, default=500, help="units in the drop, spread over the sizes")
    d.add_argument("--sizes", default="S,M,L,XL", help="sizes of the drop (units split evenly)")
    d.add_argument("--limit", type=int, default=1, help="units per member")
    d.add_argument("--lead", type=float, default=None, help="seconds from locust's start to the sale opening")
    d.add_argument("--shares", default="80,10,10", help="winners who pay, cancel, let the deadline pass (%%)")
    d.add_argument("--retry-wait", default="0.5,1.5", help="a loser's think time between clicks (s, min,max)")
    d.add_argument(
        "--cold-opening",
        action="store_true",
        help="buyers do not load the drop's page just before it opens: every first click opens its connection",
    )
    d.add_argument(
        "--fairness",
        action="store_true",
        help="two populations: polite buyers (honour Retry-After) and hammerers; report each one's win rate",
    )
    d.add_argument("--hammerers", type=float, default=0.1, help="fairness: share of the buyers who hammer")
    d.add_argument("--hammer-connections", type=int, default=3, help="fairness: connections per hammerer")
    d.add_argument(
        "--hammer-interval", type=float, default=0.05, help="fairness: seconds between a connection's clicks"
    )
    b = p.add_argument_group("browse / hop")
    b.add_argument(
        "--compare-cache",
        action="store_true",
        help="browse twice on a private catalog process, its cache on then off, and plot side by side",
    )
    b.add_argument("--direct-url", help="hop: the service called directly (default: the stack's catalog)")
    args = p.parse_args(argv)
    for key, value in DEFAULTS[args.scenario].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.buyers = args.users
    if args.fairness:
        if args.scenario != "drop":
            p.error("--fairness is a drop option")
        hammerers = max(1, round(args.buyers * args.hammerers))
        args.population = {"polite": args.buyers - hammerers, "hammerers": hammerers}
        # One locust user per connection: each hammerer is several users acting as one member.
        args.users = args.population["polite"] + hammerers * args.hammer_connections
        args.members = args.members or args.buyers
    if args.spawn_rate is None:
        args.spawn_rate = max(1.0, args.users / 2)
    return args


def _health(url: str) -> int:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


# ----------------------------------------------------------------------------- locust


def run_locust(
    args: argparse.Namespace, *, host: str, data: dict[str, Any], out: Path, tag: str, run_seconds: int
) -> tuple[Path, float]:
    """One headless locust run; returns its CSV prefix and the wall time it took."""
    data_file = out / f".data-{tag}.json"
    data_file.write_text(json.dumps(data))
    data_file.chmod(0o600)
    prefix = out / tag
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE / "scenarios" / f"{args.scenario}{'_fairness' if getattr(args, 'fairness', False) else ''}.py"),
        "--headless",
        "-u",
        str(args.users),
        "-r",
        str(args.spawn_rate),
        "-t",
        f"{run_seconds}s",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--html",
        str(out / f"{tag}.html"),
        "--only-summary",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    if args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    env = {
        **os.environ,
        "LOADTEST_DATA": str(data_file),
        "LOADTEST_PROCESSES": str(args.processes),
        "LOADTEST_TOKENS_DIR": str(out),
        "LOADTEST_REQUEST_LOG": "1" if getattr(args, "request_log", False) else "",
        "PYTHONPATH": str(HERE / "scenarios"),
    }
    print(
        f"  locust: {args.users} users, spawn {args.spawn_rate}/s, {run_seconds}s, {args.processes} process(es) "
        f"-> {host}",
        flush=True,
    )
    started = time.monotonic()
    with open(out / f"{tag}-locust.log", "w") as log:
        result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=run_seconds + 180)
    elapsed = time.monotonic() - started
    data_file.unlink(missing_ok=True)
    if result.returncode not in (0, 1) or not Path(f"{prefix}_stats.csv").exists():
        tail = (out / f"{tag}-locust.log").read_text()[-3000:]
        raise SystemExit(f"locust failed ({result.returncode}):\n{tail}")
    return prefix, elapsed


def load_generator(args: argparse.Namespace) -> dict[str, Any]:
    # Not imported: locust monkey-patches the process with gevent when imported.
    version = importlib.metadata.version("locust")
    # how a drop's buyers' first clicks reached the gateway (scenarios/opening.py)
    opening = ("cold" if args.cold_opening else report.PAGE_VIEW_FIRST) if args.scenario == "drop" else None
    return {
        **({"opening": opening} if opening else {}),
        "tool": f"locust {version}",
        "user_class": "FastHttpUser (geventhttpclient)",
        "processes": args.processes,
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "offered_rate": args.rate,
        "description": f"locust {version} FastHttpUser, {args.processes} process(es), {args.users} users"
        f"{f', paced to {args.rate:g} req/s' if args.rate else ', unpaced'}"
        f"{f', {report.OPENINGS[opening]}' if opening else ''}, on the same machine as the stack",
    }


# ----------------------------------------------------------------------------- scenarios


def prepare_members(args: argparse.Namespace, stack: Stack, gateway: str) -> list[dict[str, Any]]:
    wanted = args.members or args.users
    print(f"preparing {wanted} members ...", flush=True)
    members = prepare.prepare_members(stack, gateway, wanted, mail_dir=args.mail_dir)
    if args.fairness:
        distinct = {m["member_id"] for m in members[: args.buyers]}
        if len(distinct) < args.buyers:
            raise SystemExit(
                f"--fairness needs {args.buyers} distinct members, {len(distinct)} prepared "
                "(start the stack with RATE_LIMIT_SCALE=1000 so they can join)"
            )
        return members[: args.buyers]
    # Distinct members first, then devices: user i acts as member i.
    return members[: args.users] if len(members) >= args.users else members


def scenario_data(args: argparse.Namespace, stack: Stack, gateway: str, *, lead: float) -> tuple[dict, list[int]]:
    """The data the scenario's users read, and the clothes whose stock the invariants follow."""
    base: dict[str, Any] = {"users": args.users, "rate": args.rate}
    if args.scenario in ("browse", "hop"):
        base["clothes"] = prepare.cloth_ids(gateway)
        if not base["clothes"]:
            raise SystemExit("no clothes to browse: python manage_all.py up loads demo clothes")
        base["direct_url"] = args.direct_url or stack.url("catalog")
        return base, []
    members = prepare_members(args, stack, gateway)
    base["members"] = members
    now = dt.datetime.now(dt.UTC)
    if args.scenario == "seed":
        seed = prepare.create_drop(
            stack,
            name=f"Loadtest seed stock {now:%H%M%S}",
            price="29000",
            sizes="S:100000,M:100000,L:100000",
            starts_at=now - dt.timedelta(seconds=1),
            limit=0,
        )
        base["seed"] = {"cloth_id": seed["cloth_id"], "variant_ids": [v["variant_id"] for v in seed["variants"]]}
        base["clothes"] = prepare.cloth_ids(gateway)
        return base, [seed["cloth_id"]]
    # drop
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    per, extra = divmod(args.units, len(sizes))
    spec = ",".join(f"{s}:{per + (1 if i < extra else 0)}" for i, s in enumerate(sizes))
    starts = now + dt.timedelta(seconds=lead + 3)  # + the operator command's own start-up
    drop = prepare.create_drop(
        stack, name=f"Loadtest drop {now:%H%M%S}", price="59000", sizes=spec, starts_at=starts, limit=args.limit
    )
    pay, cancel, lapse = (float(x) for x in args.shares.split(","))
    lo, hi = (float(x) for x in args.retry_wait.split(","))
    base.update(
        {
            "drop": {**drop, "limit": args.limit, "cold_opening": args.cold_opening},
            "pay_share": pay,
            "cancel_share": cancel,
            "lapse_share": lapse,
            "retry_wait": [lo, hi],
        }
    )
    if args.fairness:
        base["fairness"] = {
            **args.population,
            "connections": args.hammer_connections,
            "interval": args.hammer_interval,
            "hammerer_users": args.population["hammerers"] * args.hammer_connections,
        }
    print(f"  drop {drop['cloth_id']}: {spec}, limit {args.limit}, opens {drop['sale_starts_at']}", flush=True)
    return base, [drop["cloth_id"]]


def population_latency(eps: dict[str, Any], label: str, outcome: str) -> dict[str, float | None] | None:
    """p50/p95/p99 (ms) of one population's order placements with one outcome
    (``POST /orders/add (polite) [won]``); None when it had no such answer."""
    row = eps.get(f"POST /orders/add ({label}) [{outcome}]")
    if not row:
        return None
    return {p: row.get(f"{p}_ms") for p in ("p50", "p95", "p99")}


#: The gateway's per-member order limit as the shop ships it (gateway_svc/config/settings.py).
SHOP_ORDER_LIMIT = {"RATE_ORDER_ATTEMPTS_PER_MEMBER": 1.0, "RATE_ORDER_WINDOW_SECONDS": 0.5}


def order_limit_note(stack: Stack) -> str | None:
    """What a fairness drop should say when the stack's gateway places orders under another
    per-member limit than the shop's (the cost benchmark needs it raised): None when it is the shop's."""
    changed, off = [], False
    for key, shops in SHOP_ORDER_LIMIT.items():
        value = stack.setting("gateway", key)
        try:
            number = float(value) if value else shops
        except ValueError:
            number = None  # the gateway would not start with it; say it all the same
        if number != shops:
            changed.append(f"{key}={value}")
            off = off or number == 0
    if not changed:
        return None
    return (
        f"the gateway runs with {', '.join(changed)}{' (the limit is off)' if off else ''}, not the shop's "
        "1 attempt per member per 0.5 s: this drop measures the hammerers against that. For the shop's own "
        f"rule: unset {' and '.join(k.partition('=')[0] for k in changed)}; python3 manage_all.py restart gateway"
    )


def fairness_figures(eps: dict[str, Any], data: dict[str, Any], stack: Stack) -> dict[str, Any]:
    """Each population's win rate (members with an order for the drop / its members) and their ratio."""
    fair = data["fairness"]
    members = [m["member_id"] for m in data["members"]]
    populations = {"polite": members[: fair["polite"]], "hammerers": members[fair["polite"] :]}
    rows = invariants._rows(
        stack.database_url("order"),
        "SELECT DISTINCT o.member_id FROM orders_order o WHERE EXISTS (SELECT 1 FROM orders_orderline l "
        "WHERE l.order_id = o.order_id AND l.cloth_id = %s)",
        (data["drop"]["cloth_id"],),
    )
    winners = {int(r[0]) for r in rows}
    out: dict[str, Any] = {}
    for name, ids in populations.items():
        won = len(winners & set(ids))
        label = "polite" if name == "polite" else "hammerer"
        answers = {
            k.split("[")[-1].rstrip("]"): v["requests"]
            for k, v in eps.items()
            if k.startswith(f"POST /orders/add ({label})")
        }
        out[name] = {
            "members": len(ids),
            "won": won,
            "win_rate": round(won / len(ids), 4) if ids else None,
            "clicks": sum(answers.values()),
            "answers": answers,
            # latency_won_ms is the worse population's: a hammerer's one win can set its p50
            "won_ms": population_latency(eps, label, "won"),
        }
    polite, hammer = out["polite"]["win_rate"], out["hammerers"]["win_rate"]
    out["hammerer_to_polite_ratio"] = round(hammer / polite, 2) if polite else None
    out["hammerer_connections"], out["hammerer_interval_s"] = fair["connections"], fair["interval"]
    return out


def hop_figures(eps: dict[str, Any]) -> dict[str, Any]:
    """The hop scenario's figures: each gateway route's latency less the direct one's, percentile
    by percentile. ``gateway_hop_ms`` is the price of the hop, on reads the gateway forwards; the
    reads as buyers send them are often answered by the gateway itself (it repeats the catalog's
    cached answers, gateway/answers.py), with no hop, and keep a figure of their own."""
    direct = eps.get("direct GET /cloth/detail/{id}", {})

    def less_direct(name: str) -> dict[str, float | None]:
        route = eps.get(name, {})
        return {
            p: (
                round(route[f"{p}_ms"] - direct[f"{p}_ms"], 1)
                if route.get(f"{p}_ms") is not None and direct.get(f"{p}_ms") is not None
                else None
            )
            for p in ("p50", "p95", "p99")
        }

    return {
        "gateway_hop_ms": less_direct("gateway, forwarded GET /cloth/detail/{id}"),
        "gateway_as_buyers_read_it_vs_direct_ms": less_direct("gateway GET /cloth/detail/{id}"),
    }


def drop_figures(
    summary: dict[str, Any], verdict: invariants.Verdict, data: dict[str, Any], stack: Stack, seconds: float
) -> dict[str, Any]:
    """Won / sold out / other, placements answered per second, time to sell out, what became of the winners."""
    eps = summary["requests"]["endpoints"]
    # Outcome label -> answers of every population; a percentile is the worst population's.
    place: dict[str, dict[str, Any]] = {}
    for k, v in eps.items():
        if not k.startswith("POST /orders/add"):
            continue
        label = k.split("[")[-1].rstrip("]") if "[" in k else "unlabelled"
        into = place.setdefault(label, {"requests": 0})
        into["requests"] += v["requests"]
        for p in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            if v.get(p) is not None:
                into[p] = max(into.get(p) or 0, v[p])
    answered = sum(v["requests"] for v in place.values())
    won = place.get("won", {}).get("requests", 0)
    known = ("won", "sold_out", "limit_exceeded", "not_on_sale", "overloaded", "rate_limited")
    total = summary["requests"]["total"]
    figures: dict[str, Any] = {
        "placements_answered": answered,
        "placements_per_s": round(answered / seconds, 1) if seconds else None,
        "won": won,
        "sold_out": place.get("sold_out", {}).get("requests", 0),
        "limit_exceeded": place.get("limit_exceeded", {}).get("requests", 0),
        "not_on_sale": place.get("not_on_sale", {}).get("requests", 0),
        # the gateway's refusals: answers (with Retry-After), not failures
        "overloaded": place.get("overloaded", {}).get("requests", 0),
        "rate_limited": place.get("rate_limited", {}).get("requests", 0),
        "other": sum(v["requests"] for k, v in place.items() if k not in known),
        "latency_won_ms": {p: place.get("won", {}).get(f"{p}_ms") for p in ("p50", "p95", "p99")},
        "latency_sold_out_ms": {p: place.get("sold_out", {}).get(f"{p}_ms") for p in ("p50", "p95", "p99")},
        "latency_refused_ms": {
            label: {p: place.get(label, {}).get(f"{p}_ms") for p in ("p50", "p99", "max")}
            for label in ("overloaded", "rate_limited")
        },
        "latency_every_answer_ms": {p: total.get(f"{p}_ms") for p in ("p50", "p95", "p99", "max")},
        "units": sum(v["stock"] for v in data["drop"]["variants"]),
    }
    try:
        rows = invariants._rows(
            stack.database_url("order"),
            "SELECT extract(epoch FROM min(o.created_at)), extract(epoch FROM max(o.created_at)), count(*) "
            "FROM orders_order o WHERE EXISTS (SELECT 1 FROM orders_orderline l WHERE l.order_id = o.order_id "
            "AND l.cloth_id = %s)",
            (data["drop"]["cloth_id"],),
        )
        first, last, n = rows[0]
        opens = dt.datetime.fromisoformat(data["drop"]["sale_starts_at"].replace("Z", "+00:00")).timestamp()
        if first is not None:
            figures["first_order_after_open_s"] = round(float(first) - opens, 3)
            figures["last_order_after_open_s"] = round(float(last) - opens, 3)
            figures["orders_in_db"] = n
    except Exception as exc:  # noqa: BLE001 - a figure, not a check
        figures["time_to_sell_out_error"] = str(exc)[:200]
    if data.get("fairness"):
        figures["fairness"] = fairness_figures(eps, data, stack)
    by = verdict.orders.get("by_status", {})
    figures["orders"] = {
        "paid": by.get(OrderStatus.PAID, 0),
        "cancelled": by.get(OrderStatus.CANCELLED, 0),
        "expired": by.get(OrderStatus.EXPIRED, 0),
        "payment_failed": by.get(OrderStatus.PAYMENT_FAILED, 0),
        "pending_not_yet_due": verdict.orders.get("pending_not_yet_due", 0),
        "latest_pending_deadline": verdict.orders.get("latest_pending_deadline"),
    }
    return figures


def main(argv: list[str]) -> int:
    if argv[:1] == ["cost"]:
        import cost  # noqa: PLC0415 - its own runner: no locust, CPU read from /proc

        return cost.main(argv[1:])
    args = parse_args(argv)
    stack = load_stack(args.stack)
    gateway = (args.gateway or stack.url("gateway")).rstrip("/")
    if "127.0.0.1" not in gateway and "localhost" not in gateway:
        raise SystemExit("load tests only go to this machine (127.0.0.1)")
    if _health(gateway) != 200:
        raise SystemExit(f"the gateway at {gateway} is not healthy: python manage_all.py up / status")
    if getattr(args, "fairness", False) and (note := order_limit_note(stack)) is not None:
        print(f"note: {note}", flush=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or HERE / "results" / f"{args.scenario}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.scenario}: results in {out}", flush=True)

    if args.scenario == "browse" and args.compare_cache:
        import cachecompare

        return cachecompare.run(args, stack, gateway, out, run_locust=run_locust, load_generator=load_generator)

    spawn_seconds = args.users / args.spawn_rate
    lead = args.lead if args.lead is not None else spawn_seconds + 8
    dead_before = invariants.dead_letters(stack)
    since = time.time() - 1
    data, cloth_ids = scenario_data(args, stack, gateway, lead=lead)
    opens = 0.0
    if args.scenario == "drop":
        opens = dt.datetime.fromisoformat(data["drop"]["sale_starts_at"].replace("Z", "+00:00")).timestamp()
        run_seconds = int(opens - time.time()) + args.duration + 1
        measure_seconds = float(args.duration)
    else:
        run_seconds = int(args.duration + spawn_seconds)
        measure_seconds = float(run_seconds)
    prefix, _ = run_locust(args, host=gateway, data=data, out=out, tag=args.scenario, run_seconds=run_seconds)
    merged = prepare.MemberCache(stack.name).merge_tokens(out)

    requests = report.summarize_requests(prefix, seconds=measure_seconds)
    requests["peak_req_per_s_in_one_second"] = report.peak_rps(prefix)
    print("load done; waiting for the saga to settle ...", flush=True)
    verdict = invariants.wait_and_check(
        stack, since=since, cloth_ids=cloth_ids, dead_before=dead_before, timeout=args.settle_timeout
    )
    checks_ok = verdict.ok and requests["server_errors_5xx"] == 0
    summary: dict[str, Any] = {
        "scenario": args.scenario,
        "started_utc": stamp,
        "gateway": gateway,
        "load_generator": {**load_generator(args), "loop_lag_ms": report.loop_lag(out, since=opens)},
        "measured_seconds": measure_seconds,
        "requests": requests,
        "invariants": {**verdict.as_dict(), "no_5xx": requests["server_errors_5xx"] == 0},
        "orders": {k: v for k, v in verdict.orders.items() if k != "stock"},
        "stock": verdict.orders.get("stock"),
        "stack": stack.sizing(),
        "machine": machine(),
        "tokens_merged_into_cache": merged,
    }
    summary["invariants"]["checks"].append(
        {"name": "no 5xx answers", "ok": requests["server_errors_5xx"] == 0, "detail": requests["server_errors_5xx"]}
    )
    if args.scenario == "drop":
        summary["figures"] = drop_figures(summary, verdict, data, stack, measure_seconds)
    elif args.scenario == "hop":
        summary["figures"] = hop_figures(requests["endpoints"])
    summary["ok"] = checks_ok
    summary["plots"] = [p.name for p in report.plot_run(prefix, out, f"{args.scenario} ({stamp})")]
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print()
    print(report.format_summary(summary))
    print(f"\nresults: {out}")
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

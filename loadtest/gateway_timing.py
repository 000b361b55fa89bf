"""Where a request's time went inside the gateway, from its web server's timing log.

    GUNICORN_TIMING_DIR=/tmp/timing python3 manage_all.py restart gateway
    python3 manage_all.py loadtest drop ...
    python3 loadtest/gateway_timing.py /tmp/timing [--since EPOCH --until EPOCH]

Each gateway worker (``shared/gunicorn_worker.py``) writes a line per request: when its
answer was written, method, path, status, and in ms its wait for a thread (in gthread's
pool queue, where no admission gate sees it), its reading, the application up to the
admission gate, and the whole time from ready to written. This prints, per route and
status, the wait for a thread and the time in the application (p50 / p99), and per
worker process how many of its threads were busy and how many requests waited for one on
average over the window: threads all busy with requests waiting is a gateway whose pool,
not its CPU, is the queue.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    worker: str
    method: str
    path: str
    status: str
    ready: float  # wall clock, s
    picked: float
    done: float
    to_gate_ms: float | None

    @property
    def queue_ms(self) -> float:
        return (self.picked - self.ready) * 1000

    @property
    def app_ms(self) -> float:
        return (self.done - self.picked) * 1000

    @property
    def total_ms(self) -> float:
        return (self.done - self.ready) * 1000


def read(directory: Path, since: float = 0.0, until: float = float("inf")) -> list[Row]:
    """The rows of every worker's file whose answer was written within [since, until]."""
    rows = []
    for f in sorted(directory.glob("timing-*.tsv")):
        worker = f.stem.split("-", 1)[1]
        for line in f.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) != 8:
                continue  # a line cut short by a worker stopping mid-write
            written, method, path, status, queue, _parse, to_gate, total = parts
            done = float(written)
            if not since <= done <= until:
                continue
            ready = done - float(total or 0) / 1000
            rows.append(
                Row(
                    worker,
                    method,
                    path,
                    status,
                    ready,
                    ready + float(queue or 0) / 1000,
                    done,
                    float(to_gate) if to_gate else None,
                )
            )
    return rows


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile of values (the nearest rank below), to 0.1; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)


def route(path: str) -> str:
    """/orders/add and /payment/17 -> their pattern's shape, so a route is one line."""
    parts = ["{id}" if p.isdigit() else p for p in path.split("/")]
    return "/".join(parts)


def summarize(rows: list[Row]) -> dict:
    by_route: dict[str, list[Row]] = collections.defaultdict(list)
    for r in rows:
        by_route[f"{r.method} {route(r.path)} {r.status}"].append(r)
    routes = {
        name: {
            "requests": len(rs),
            "queue_ms": {
                "p50": percentile([r.queue_ms for r in rs], 50),
                "p99": percentile([r.queue_ms for r in rs], 99),
            },
            "app_ms": {"p50": percentile([r.app_ms for r in rs], 50), "p99": percentile([r.app_ms for r in rs], 99)},
            "total_ms": {
                "p50": percentile([r.total_ms for r in rs], 50),
                "p99": percentile([r.total_ms for r in rs], 99),
            },
            "thread_seconds": round(sum(r.app_ms for r in rs) / 1000, 1),
        }
        for name, rs in sorted(by_route.items(), key=lambda kv: -len(kv[1]))
    }
    workers = {}
    if rows:
        start, end = min(r.done for r in rows), max(r.done for r in rows)
        span = max(end - start, 1e-9)
        for worker in sorted({r.worker for r in rows}):
            mine = [r for r in rows if r.worker == worker]
            busy = sum(max(0.0, min(r.done, end) - max(r.picked, start)) for r in mine) / span
            waiting = sum(max(0.0, min(r.picked, end) - max(r.ready, start)) for r in mine) / span
            workers[worker] = {
                "requests": len(mine),
                "busy_threads": round(busy, 1),
                "waiting_for_a_thread": round(waiting, 1),
            }
    every = {
        "requests": len(rows),
        "queue_ms": {
            "p50": percentile([r.queue_ms for r in rows], 50),
            "p99": percentile([r.queue_ms for r in rows], 99),
        },
        "total_ms": {
            "p50": percentile([r.total_ms for r in rows], 50),
            "p99": percentile([r.total_ms for r in rows], 99),
        },
    }
    return {"every": every, "routes": routes, "workers": workers}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("directory", type=Path)
    p.add_argument("--since", type=float, default=0.0, help="answers written from this epoch second on")
    p.add_argument("--until", type=float, default=float("inf"))
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    summary = summarize(read(args.directory, args.since, args.until))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    e = summary["every"]
    print(
        f"every answer: {e['requests']} requests, wait for a thread p50 {e['queue_ms']['p50']} / p99 {e['queue_ms']['p99']} ms, "
        f"ready to written p50 {e['total_ms']['p50']} / p99 {e['total_ms']['p99']} ms"
    )
    for name, r in summary["routes"].items():
        print(
            f"  {name:34s} {r['requests']:6d}  wait for a thread {r['queue_ms']['p50']} / {r['queue_ms']['p99']}  "
            f"in the app {r['app_ms']['p50']} / {r['app_ms']['p99']}  whole {r['total_ms']['p50']} / {r['total_ms']['p99']} ms  "
            f"({r['thread_seconds']} thread-s)"
        )
    for worker, w in summary["workers"].items():
        print(
            f"  worker {worker}: {w['requests']} requests, {w['busy_threads']} threads busy, {w['waiting_for_a_thread']} waiting for one (averages)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

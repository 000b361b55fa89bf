"""Results: locust's CSV files turned into summary.json, a printed summary and PNG plots.

Locust writes ``<prefix>_stats.csv`` (totals per endpoint), ``<prefix>_stats_history.csv``
(one row every few seconds: throughput and rolling latency percentiles) and
``<prefix>_failures.csv``. Everything here reads those files only, so a report can be
rebuilt from a results folder long after the run.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402
from gateway_timing import percentile  # noqa: E402

PERCENTILES = ("50%", "95%", "99%")
#: How a drop's buyers reached its opening (``load_generator.opening`` in a summary; scenarios/opening.py).
PAGE_VIEW_FIRST = "page view first"
OPENINGS = {
    PAGE_VIEW_FIRST: "each buyer loaded the drop's page just before it opened",
    "cold": "cold opening (every first click on a new connection)",
}
#: an outcome label the scenarios append to a request name: "POST /orders/add [sold_out]"
_LABEL = re.compile(r"^(?P<base>.*?) \[(?P<label>[a-z_]+)\]$")


def _num(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # locust writes "N/A" for percentiles of endpoints without answers


def _final_or_periodic(prefix: Path, kind: str) -> Path:
    """The final totals written at quit (scenarios/common.py) when present, else locust's periodic file."""
    final = Path(f"{prefix}_final_{kind}.csv")
    return final if final.exists() else Path(f"{prefix}_{kind}.csv")


def read_stats(prefix: Path) -> list[dict[str, str]]:
    with open(_final_or_periodic(prefix, "stats"), newline="") as f:
        return list(csv.DictReader(f))


def read_history(prefix: Path) -> list[dict[str, str]]:
    path = Path(f"{prefix}_stats_history.csv")
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_failures(prefix: Path) -> list[dict[str, str]]:
    path = _final_or_periodic(prefix, "failures")
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _endpoint(row: dict[str, str], seconds: float | None) -> dict[str, Any]:
    requests = int(row["Request Count"])
    out: dict[str, Any] = {
        "requests": requests,
        "failures": int(row["Failure Count"]),
        "req_per_s": round(requests / seconds, 1) if seconds else _num(row["Requests/s"]),
        "avg_ms": _num(row["Average Response Time"]),
        "max_ms": _num(row["Max Response Time"]),
    }
    for p in PERCENTILES:
        out[f"p{p.rstrip('%')}_ms"] = _num(row.get(p, ""))
    return out


def summarize_requests(prefix: Path, *, seconds: float | None = None) -> dict[str, Any]:
    """Per endpoint and total: requests, failures, req/s, p50/p95/p99; outcomes; 5xx counted from failures.

    ``seconds`` is the run's duration as the runner timed it (locust's own Requests/s divides
    by the whole run, ramp-up included, which is what we want for a fixed-length run).
    """
    stats = read_stats(prefix)
    endpoints: dict[str, Any] = {}
    total: dict[str, Any] = {}
    outcomes: dict[str, dict[str, int]] = {}
    for row in stats:
        if row["Name"] == "Aggregated":
            total = _endpoint(row, seconds)
            continue
        endpoints[row["Name"]] = _endpoint(row, seconds)  # the scenarios name requests "METHOD /path"
        m = _LABEL.match(row["Name"])
        base = m.group("base") if m else row["Name"]
        outcomes.setdefault(base, {})[m.group("label") if m else "ok"] = int(row["Request Count"])
    failures = read_failures(prefix)
    by_error: dict[str, int] = {}
    for f in failures:
        by_error[f"{f['Method']} {f['Name']}: {f['Error']}"] = int(f["Occurrences"])
    server_errors = sum(n for err, n in by_error.items() if re.search(r"HTTP 5\d\d", err))
    return {
        "total": total,
        "endpoints": endpoints,
        "outcomes": {k: v for k, v in outcomes.items() if len(v) > 1},
        "failures_by_error": by_error,
        "server_errors_5xx": server_errors,
    }


def loop_lag(folder: Path, *, since: float = 0.0) -> dict[str, Any] | None:
    """The load generator's loop lag (``scenarios/looplag.py``), in ms, over every process's
    samples taken from ``since`` (wall clock): p50, p99, max, and how many samples; None if
    no process wrote any."""
    lags_ms: list[float] = []
    for path in sorted(Path(folder).glob("loop-lag-*.json")):
        lags_ms += [lag * 1000 for at, lag in json.loads(path.read_text()) if at >= since]
    if not lags_ms:
        return None
    return {
        "p50": percentile(lags_ms, 50),
        "p99": percentile(lags_ms, 99),
        "max": round(max(lags_ms), 1),
        "samples": len(lags_ms),
    }


# ----------------------------------------------------------------------------- plots


def _series(history: list[dict[str, str]], name: str = "Aggregated") -> dict[str, list[float]]:
    """Per-row series. Throughput is the difference of the running totals between rows (exact per
    interval); locust's own Requests/s column is a 10-second moving average that smears a burst."""
    rows = [r for r in history if r["Name"] == name]
    if not rows:
        return {}
    t0 = int(rows[0]["Timestamp"])
    out: dict[str, list[float]] = {"t": [], "users": [], "rps": [], "fps": [], **{p: [] for p in PERCENTILES}}
    prev_t, prev_n, prev_f = t0, 0, 0
    for r in rows:
        t = int(r["Timestamp"])
        n, f = int(r.get("Total Request Count") or 0), int(r.get("Total Failure Count") or 0)
        if t == prev_t and out["t"]:
            continue
        span = max(1, t - prev_t)
        out["t"].append(t - t0)
        out["users"].append(_num(r["User Count"]) or 0)
        out["rps"].append((n - prev_n) / span)
        out["fps"].append((f - prev_f) / span)
        prev_t, prev_n, prev_f = t, n, f
        for p in PERCENTILES:
            v = _num(r.get(p, ""))
            out[p].append(v if v is not None else float("nan"))
    return out


def peak_rps(prefix: Path) -> float | None:
    """The busiest second of the run (from the running totals)."""
    s = _series(read_history(prefix))
    return round(max(s["rps"]), 1) if s and s["rps"] else None


def plot_run(prefix: Path, out_dir: Path, title: str) -> list[Path]:
    """Throughput and latency percentiles over time (one PNG each)."""
    s = _series(read_history(prefix))
    if not s:
        return []
    made = []
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(s["t"], s["rps"], label="requests/s")
    ax.plot(s["t"], s["fps"], label="failures/s", color="tab:red")
    ax.set_xlabel("seconds")
    ax.set_ylabel("per second")
    ax2 = ax.twinx()
    ax2.plot(s["t"], s["users"], color="tab:gray", linestyle=":", label="users")
    ax2.set_ylabel("users")
    ax.legend(loc="upper left")
    ax.set_title(f"{title}: throughput")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out_dir / "throughput.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path)

    fig, ax = plt.subplots(figsize=(9, 4))
    for p in PERCENTILES:
        ax.plot(s["t"], s[p], label=f"p{p.rstrip('%')}")
    ax.set_xlabel("seconds")
    ax.set_ylabel("ms (rolling window)")
    ax.set_title(f"{title}: latency percentiles")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out_dir / "latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path)
    return made


def plot_compare(runs: dict[str, Path], summaries: dict[str, dict[str, Any]], out: Path, title: str) -> Path:
    """Side by side: throughput over time of each run, and their p50/p95/p99 and req/s as bars."""
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.2))
    for label, prefix in runs.items():
        s = _series(read_history(prefix))
        if s:
            a.plot(s["t"], s["rps"], label=label)
    a.set_title("requests/s over time")
    a.set_xlabel("seconds")
    a.legend()
    a.grid(alpha=0.3)
    labels = list(summaries)
    b.bar(labels, [summaries[k]["total"].get("req_per_s") or 0 for k in labels], color=["tab:green", "tab:orange"])
    b.set_title("requests/s (whole run)")
    for i, k in enumerate(labels):
        b.annotate(
            f"{summaries[k]['total'].get('req_per_s') or 0:.0f}",
            (i, summaries[k]["total"].get("req_per_s") or 0),
            ha="center",
            va="bottom",
        )
    width = 0.8 / max(1, len(labels))
    for i, k in enumerate(labels):
        vals = [summaries[k]["total"].get(f"p{p.rstrip('%')}_ms") or 0 for p in PERCENTILES]
        c.bar([x + i * width for x in range(len(PERCENTILES))], vals, width=width, label=k)
    c.set_xticks([x + width * (len(labels) - 1) / 2 for x in range(len(PERCENTILES))])
    c.set_xticklabels([f"p{p.rstrip('%')}" for p in PERCENTILES])
    c.set_ylabel("ms")
    c.set_title("latency (whole run)")
    c.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------- printing


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines a person reads in the terminal; summary.json holds the rest."""
    lines = [f"scenario {summary['scenario']}: {summary['load_generator']['description']}"]
    lag = summary["load_generator"].get("loop_lag_ms")
    if lag:
        lines.append(
            f"load generator's own delay (its loop woke late; inside every latency below): "
            f"p50 {lag['p50']} / p99 {lag['p99']} / max {lag['max']} ms"
        )
    runs = summary.get("runs") or {"": summary["requests"]}
    # a drop's buyers may load its page first: that row is listed, but not in the total (scenarios/opening.py)
    scope = (
        " (without the page views before the opening)"
        if summary["load_generator"].get("opening") == PAGE_VIEW_FIRST
        else ""
    )
    for label, req in runs.items():
        t = req["total"]
        prefix = f"[{label}] " if label else ""
        lines.append(
            f"{prefix}total{scope}: {t.get('requests')} requests, {t.get('failures')} failures, "
            f"{t.get('req_per_s')} req/s, p50 {t.get('p50_ms')} / p95 {t.get('p95_ms')} / "
            f"p99 {t.get('p99_ms')} ms, 5xx {req.get('server_errors_5xx')}"
        )
        for name, e in req["endpoints"].items():
            lines.append(
                f"  {name:<44} {e['requests']:>7} req {e['failures']:>5} fail {e['req_per_s'] or 0:>8} /s  "
                f"p50 {e['p50_ms']} p95 {e['p95_ms']} p99 {e['p99_ms']} ms"
            )
        for err, n in list(req.get("failures_by_error", {}).items())[:8]:
            lines.append(f"  failure x{n}: {err}")
    for key, value in (summary.get("figures") or {}).items():
        lines.append(f"{key}: {json.dumps(value)}")
    inv = summary.get("invariants")
    if inv:
        lines.append(f"saga settled: {inv['settled']} (in {inv['settle_seconds']} s)")
        for c in inv["checks"]:
            lines.append(f"  [{'ok' if c['ok'] else 'BROKEN'}] {c['name']}" + ("" if c["ok"] else f": {c['detail']}"))
    lines.append(f"verdict: {'PASS' if summary.get('ok') else 'FAIL'}")
    return "\n".join(lines)

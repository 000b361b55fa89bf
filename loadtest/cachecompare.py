"""browse --compare-cache: what the catalog's cache buys, measured on a private catalog process.

The public list and detail read the catalog's own tables through a Redis cache of whole
answers (``CATALOG_CACHE_SECONDS``, invalidated by a version bump on every cloth or stock
change). ``STOCK_READS_FROM_CACHE`` is the inventory's switch for its internal stock
reads, which these routes never call, so it cannot show the difference. Switching the
catalog's cache on a running stack needs a restart with another environment, which
``manage_all.py restart`` does not pass on; so this starts a catalog of its own on a
spare port, with the stack's environment and web server command, once with the cache and
once with ``CATALOG_CACHE_SECONDS=0``, and runs the same browse load straight at it.
The stack's own catalog is not touched.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prepare
import report
from stack import ROOT, Stack, machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/cloth/list", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the private catalog at {url} did not come up")


def private_command(command: str, port: int) -> list[str]:
    """The stack's catalog command (granian or gunicorn) listening on ``port`` instead."""
    args = shlex.split(command)
    if "--bind" in args:  # gunicorn
        args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
        if "--name" in args:
            args[args.index("--name") + 1] = "shop-catalog-cachecompare"
    else:  # granian
        args[args.index("--port") + 1] = str(port)
    return args


def start_catalog(stack: Stack, *, cache_seconds: int, log: Path) -> tuple[subprocess.Popen, str]:
    """The stack's catalog command on a free port with ``CATALOG_CACHE_SECONDS`` set; returns (process, URL)."""
    program = stack.programs["catalog"]
    port = _free_port()
    args = private_command(program.command, port)
    # Its own metrics folder: the stack's catalog counts only its own requests.
    metrics = log.parent / f"metrics-{port}"
    metrics.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **program.env,
        "CATALOG_CACHE_SECONDS": str(cache_seconds),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    proc = subprocess.Popen(
        args, cwd=ROOT / "catalog_svc", env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    _wait_up(url)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(args: Any, stack: Stack, gateway: str, out: Path, *, run_locust: Callable, load_generator: Callable) -> int:
    clothes = prepare.cloth_ids(gateway)
    if not clothes:
        raise SystemExit("no clothes to browse")
    run_seconds = int(args.duration + args.users / args.spawn_rate)
    prefixes: dict[str, Path] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for label, seconds in (
        ("cache on", int(stack.setting("catalog", "CATALOG_CACHE_SECONDS", "30")) or 30),
        ("cache off", 0),
    ):
        tag = "browse-cache-on" if seconds else "browse-cache-off"
        proc, url = start_catalog(stack, cache_seconds=seconds, log=out / f"{tag}-catalog.log")
        try:
            print(f"[{label}] private catalog at {url} (CATALOG_CACHE_SECONDS={seconds})", flush=True)
            prefix, _ = run_locust(
                args,
                host=url,
                data={"users": args.users, "rate": args.rate, "clothes": clothes},
                out=out,
                tag=tag,
                run_seconds=run_seconds,
            )
        finally:
            stop(proc)
        prefixes[label] = prefix
        summaries[label] = report.summarize_requests(prefix, seconds=float(run_seconds))
        report.plot_run(prefix, out, f"browse, {label}")
        for name in ("throughput.png", "latency.png"):
            (out / name).rename(out / f"{tag}-{name}")
    on, off = summaries["cache on"]["total"]["req_per_s"], summaries["cache off"]["total"]["req_per_s"]
    figures = {
        "cache_speedup_req_per_s": round(on / off, 2) if on and off else None,
        "p95_ms": {k: s["total"].get("p95_ms") for k, s in summaries.items()},
    }
    report.plot_compare(prefixes, summaries, out / "cache-on-vs-off.png", "browse: catalog cache on vs off")
    errors = sum(s["server_errors_5xx"] for s in summaries.values())
    summary = {
        "scenario": "browse --compare-cache",
        "target": "a private catalog process (same command and environment "
        "as the stack's, other port), called directly: the gateway is not in this measurement",
        "load_generator": load_generator(args),
        "measured_seconds": run_seconds,
        "runs": summaries,
        "figures": figures,
        "invariants": None,
        "ok": errors == 0,
        "stack": stack.sizing(),
        "machine": machine(),
        "plots": sorted(p.name for p in out.glob("*.png")),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print()
    print(report.format_summary(summary))
    print(f"\nresults: {out}")
    return 0 if errors == 0 else 1

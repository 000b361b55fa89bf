"""What every scenario shares: the run's data file, member assignment, answer classification.

``run.py`` prepares members, tokens and clothes before the clock starts and hands them to
locust through a JSON file named by ``LOADTEST_DATA``; with ``--processes`` every forked
worker reads the same file, and ``member_for`` spreads users over members so that no two
users (in any process) act as the same member unless there are more users than members.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import looplag
import opening
import pooled
import requestlog
from locust import constant_throughput, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

pooled.install()  # every user keeps its connection, whatever its socket's descriptor

_data: dict[str, Any] | None = None
_counter = itertools.count()
_counter_lock = threading.Lock()
#: Newest tokens of the members a process acted as (refresh rotates them); written at test stop
#: so the next run's preparation does not present an already rotated refresh token.
latest_tokens: dict[str, dict[str, str]] = {}


def data() -> dict[str, Any]:
    """The run's prepared data (members with tokens, clothes, drop), read once per process."""
    global _data
    if _data is None:
        path = os.environ.get("LOADTEST_DATA")
        if not path:
            raise RuntimeError("LOADTEST_DATA is not set: start scenarios through loadtest/run.py")
        _data = json.loads(Path(path).read_text())
    return _data


def pacing(d: dict[str, Any], unpaced: Callable[..., float]) -> Callable[..., float]:
    """A user's wait time: its share of ``--rate`` when the run is paced, else ``unpaced``."""
    rate = d.get("rate")
    return constant_throughput(float(rate) / max(1, int(d["users"]))) if rate else unpaced


class WaitsAsTold:
    """A user that, after a refusal, waits what its ``Retry-After`` said (``hold``) instead of
    its usual wait (``_pace``), once: a refused request is tried again no sooner than the API asks."""

    hold: float | None = None
    _pace: Callable[..., float]

    def wait_time(self) -> float:
        if self.hold is not None:
            hold, self.hold = self.hold, None
            return hold
        return self._pace(self)


def member_for(environment: Environment) -> dict[str, Any]:
    """A member for a new user: worker w of P takes members w, w+P, w+2P ... so processes never share one."""
    members = data()["members"]
    processes = max(1, int(os.environ.get("LOADTEST_PROCESSES", "1")))
    worker = max(0, getattr(environment.runner, "worker_index", 0) or 0)
    with _counter_lock:
        n = next(_counter)
    return dict(members[(worker + processes * n) % len(members)])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(resp: Any) -> str:
    """The ``error.code`` of a JSON error answer, or '' (the body may not be JSON at all)."""
    try:
        body = resp.json()
    except Exception:  # noqa: BLE001 - an HTML 502 page, an empty body, a cut connection
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code", ""))
    return ""


#: The gateway's refusals (SPEC): it did no work for the request, and says when to come back.
#: Results, reported under their own names, not failures.
REFUSALS = {(503, "overloaded"): "overloaded", (429, "rate_limited"): "rate_limited"}


def retry_after(resp: Any, default: float = 1.0) -> float:
    """The seconds a refusal's ``Retry-After`` asks for (whole seconds), or ``default``."""
    try:
        return max(0.0, float(resp.headers.get("Retry-After")))
    except (TypeError, ValueError):
        return default


def judge(resp: Any, *, ok: tuple[int, ...], expected: dict[tuple[int, str], str] | None = None) -> str:
    """Classify one answer taken with ``catch_response=True``; return its outcome label.

    ``ok`` statuses succeed (label ''). ``expected`` maps (status, error code) to a label
    that also succeeds but is reported under its own name (``POST /orders/add [sold_out]``),
    so sold-out answers count as results with their own latency, not as failures. Anything
    else fails as ``HTTP <status> <code>`` (label 'failed'); the report counts 5xx from
    those messages.
    """
    status = resp.status_code or 0
    if status in ok:
        resp.success()
        return ""
    code = error_code(resp)
    label = (expected or {}).get((status, code))
    if label:
        resp.request_meta["name"] = f"{resp.request_meta['name']} [{label}]"
        resp.success()
        return label
    detail = code or str(getattr(resp, "error", "") or "")[:80]
    resp.failure(f"HTTP {status} {detail}".strip())
    return "failed"


def refresh_member(client: Any, member: dict[str, Any]) -> bool:
    """Rotate the member's tokens (``GET /member/refresh``); keep the new pair for this user and the cache."""
    with client.get(
        "/member/refresh",
        headers={"Refresh-Token": member["refresh_token"]},
        name="GET /member/refresh",
        catch_response=True,
    ) as resp:
        if judge(resp, ok=(200,), expected=REFUSALS) != "":
            return False
        body = resp.json()
    member["access_token"], member["refresh_token"] = body["access_token"], body["refresh_token"]
    remember_tokens(member)
    return True


def token_expired(resp: Any) -> bool:
    """A 401 on an access token that ran out mid-run (they live minutes): reported apart, not as a failure.

    The caller refreshes and carries on; a refused refresh is then a real failure.
    """
    if resp.status_code == 401 and error_code(resp) in ("token_invalid", "not_authenticated"):
        resp.request_meta["name"] = f"{resp.request_meta['name']} [token_expired]"
        resp.success()
        return True
    return False


def remember_tokens(member: dict[str, Any]) -> None:
    latest_tokens[f"{member['email']}|{member.get('device', 'loadtest')}"] = {
        "access_token": member["access_token"],
        "refresh_token": member["refresh_token"],
        "at": str(time.time()),
    }


@events.test_stop.add_listener
def _write_tokens(environment: Environment, **_: Any) -> None:
    """Hand rotated refresh tokens back to run.py, which merges them into the member cache."""
    folder = os.environ.get("LOADTEST_TOKENS_DIR")
    if not folder or not latest_tokens:
        return
    path = Path(folder) / f"tokens-{os.getpid()}.json"
    path.write_text(json.dumps(latest_tokens))


#: This process's loop lag, watched while its users run (not in a master, which has none).
loop_lag = looplag.LoopLag()


@events.test_start.add_listener
def _watch_loop_lag(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        loop_lag.start()


@events.test_stop.add_listener
def _write_loop_lag(environment: Environment, **_: Any) -> None:
    """Hand the samples to run.py (``loop-lag-<pid>.json`` in the run's folder)."""
    loop_lag.stop()
    folder = os.environ.get("LOADTEST_TOKENS_DIR")
    if folder and loop_lag.samples:
        loop_lag.write(Path(folder))


_request_log: requestlog.RequestLog | None = None


@events.test_start.add_listener
def _start_request_log(environment: Environment, **_: Any) -> None:
    """With ``LOADTEST_REQUEST_LOG`` set (``--request-log``), every request of this process
    goes to ``requests-<pid>.tsv`` in the run's folder (not in a master, which sends none)."""
    global _request_log
    folder = os.environ.get("LOADTEST_TOKENS_DIR")
    if not os.environ.get("LOADTEST_REQUEST_LOG") or not folder or isinstance(environment.runner, MasterRunner):
        return
    if _request_log is None:
        _request_log = requestlog.RequestLog(Path(folder), os.getpid())
        environment.events.request.add_listener(_request_log.record)


@events.quit.add_listener
def _write_final_stats(exit_code: int, **_: Any) -> None:
    """Write the final totals as ``<prefix>_final_stats.csv`` / ``_final_failures.csv``.

    Locust's own ``_stats.csv`` is rewritten once a second while the run goes on, so it
    can miss what was answered in the last second and during ``--stop-timeout``; this
    event fires after the runner has quit (workers' last reports included), so these
    files hold the same totals as the printed summary, but for one thing: their
    "Aggregated" row is the sale's answers (``opening.sale_total``), without the drop's page
    views before it opened, which keep a row of their own.
    """
    env = _environment
    if env is None or env.parsed_options is None or not env.parsed_options.csv_prefix:
        return
    if isinstance(env.runner, WorkerRunner):
        return
    env.stats.total = opening.sale_total(env.stats)  # the run is over: nothing logs to it again
    writer = StatsCSV(env, PERCENTILES_TO_REPORT)
    prefix = env.parsed_options.csv_prefix
    with open(f"{prefix}_final_stats.csv", "w", newline="") as f:
        writer.requests_csv(csv.writer(f))
    with open(f"{prefix}_final_failures.csv", "w", newline="") as f:
        writer.failures_csv(csv.writer(f))


_environment: Environment | None = None


@events.init.add_listener
def _remember_environment(environment: Environment, **_: Any) -> None:
    global _environment
    _environment = environment

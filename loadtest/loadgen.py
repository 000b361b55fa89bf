"""A small closed-loop load generator: a fixed list of jobs, N keep-alive connections, as little CPU as we can.

A job is one or more requests sent in order on one connection (a payment is two: open,
then complete). Each connection takes the next job from the shared list until none is
left, so exactly the jobs given are sent. Two clients:

- ``gevent``: geventhttpclient (a C HTTP parser) on gevent greenlets, one per connection,
  in this process; the cheaper of the two (see ``docs/performance.md``);
- ``urllib3``: one thread per connection, each with its own one-connection pool.

Only 127.0.0.1 is spoken to. The CPU this process used while sending is measured
(``getrusage``) and reported, so the generator's own cost is known, and it is never
counted in the stack's.
"""

from __future__ import annotations

import json
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CLIENTS = ("gevent", "urllib3")


@dataclass
class Request:
    method: str
    path: str
    body: Any = None  # JSON-able, or None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    status: int  # 0: no answer (connection error, timeout)
    code: str  # the JSON error code, or ''
    body: bytes


#: a job is a list of requests; a request may also be a function of the answers so far
Job = list[Request | Callable[[list[Answer]], Request]]


@dataclass
class LoadResult:
    jobs: int
    requests: int
    answered: int
    outcomes: Counter  # "201", "409 sold_out", "0 ConnectionError" ...
    wall_seconds: float
    generator_cpu_seconds: float
    answers: list[list[Answer]]  # per job, in the order the jobs were given

    @property
    def generator_ms_per_request(self) -> float | None:
        return self.generator_cpu_seconds * 1000 / self.requests if self.requests else None


def error_code(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("code", ""))
    return ""


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _encode(req: Request) -> tuple[bytes | None, dict[str, str]]:
    headers = {"Connection": "keep-alive", **req.headers}
    if req.body is None:
        return None, headers
    headers["Content-Type"] = "application/json"
    return json.dumps(req.body).encode(), headers


def run(base_url: str, jobs: list[Job], *, connections: int = 12, client: str = "gevent", timeout: float = 30.0):
    """Send every job over ``connections`` keep-alive connections; returns a :class:`LoadResult`."""
    parts = urlsplit(base_url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("the load generator only talks to 127.0.0.1")
    host, port = parts.hostname, parts.port or 80
    answers: list[list[Answer]] = [[] for _ in jobs]
    next_job = iter(range(len(jobs)))
    lock = threading.Lock()

    def take() -> int | None:
        with lock:
            return next(next_job, None)

    def do_job(i: int, send: Callable[[Request], Answer]) -> None:
        for item in jobs[i]:
            req = item(answers[i]) if callable(item) else item
            answers[i].append(send(req))

    started_cpu, started = _cpu(), time.monotonic()
    if client == "gevent":
        _run_gevent(host, port, take, do_job, connections, timeout)
    elif client == "urllib3":
        _run_urllib3(host, port, take, do_job, connections, timeout)
    else:
        raise ValueError(f"unknown client {client}")
    wall, cpu = time.monotonic() - started, _cpu() - started_cpu
    outcomes: Counter = Counter()
    requests = answered = 0
    for job in answers:
        for a in job:
            requests += 1
            answered += a.status != 0
            outcomes[f"{a.status} {a.code}".strip()] += 1
    return LoadResult(len(jobs), requests, answered, outcomes, wall, cpu, answers)


def _run_gevent(host, port, take, do_job, connections, timeout) -> None:
    import gevent  # noqa: PLC0415 - only when this client is chosen (no monkey-patching: greenlets only)
    from geventhttpclient import HTTPClient  # noqa: PLC0415

    def worker() -> None:
        http = HTTPClient(host, port, concurrency=1, connection_timeout=timeout, network_timeout=timeout)

        def send(req: Request) -> Answer:
            body, headers = _encode(req)
            try:
                resp = http.request(req.method, req.path, body=body, headers=headers)
                data = resp.read()
                resp.release()
            except Exception as exc:  # noqa: BLE001 - any failure is "no answer", counted by name
                http.close()
                return Answer(0, type(exc).__name__, b"")
            return Answer(resp.status_code, error_code(data) if resp.status_code >= 400 else "", data)

        try:
            while (i := take()) is not None:
                do_job(i, send)
        finally:
            http.close()

    gevent.joinall([gevent.spawn(worker) for _ in range(connections)], raise_error=True)


def _run_urllib3(host, port, take, do_job, connections, timeout) -> None:
    import urllib3  # noqa: PLC0415

    errors: list[BaseException] = []

    def worker() -> None:
        pool = urllib3.HTTPConnectionPool(host, port, maxsize=1, block=True, retries=False, timeout=timeout)

        def send(req: Request) -> Answer:
            body, headers = _encode(req)
            try:
                resp = pool.urlopen(req.method, req.path, body=body, headers=headers, preload_content=True)
            except Exception as exc:  # noqa: BLE001
                return Answer(0, type(exc).__name__, b"")
            return Answer(resp.status, error_code(resp.data) if resp.status >= 400 else "", resp.data)

        try:
            while (i := take()) is not None:
                do_job(i, send)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)
        finally:
            pool.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]

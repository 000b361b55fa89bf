"""The gateway's gunicorn worker: gthread, with each request's wait for a thread in its environ."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

APP = """
import json

def app(environ, start_response):
    body = json.dumps({k: environ.get(k) for k in ("gunicorn.ready_at", "gunicorn.picked_at")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The application of the refusal tests: Django settings naming the bounds, a slow route.
SLOW_APP = """
import json, os, time
from django.conf import settings

settings.configure(
    GATEWAY_THREAD_WAIT_SECONDS=float(os.environ.get("WAIT_BOUND", "0.2")),
    GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS=3,
    GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS=0,
)

from shared import gunicorn_worker

def told(refusals):
    with open("told.txt", "ab") as f:
        for data, retry_after, refused_at in refusals:
            f.write(data.split(b"\\r\\n")[0] + b" %d\\n" % retry_after)

gunicorn_worker.refusal_listeners.append(told)

def app(environ, start_response):
    if environ["PATH_INFO"].startswith("/slow"):
        time.sleep(1.0)
    body = json.dumps({"path": environ["PATH_INFO"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
"""


def _start(tmp_path, app: str, threads: int, *args: str, **env_extra: str):
    (tmp_path / "stampapp.py").write_text(app)
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root), os.environ.get("PYTHONPATH", "")]),
        "GUNICORN_TIMING_DIR": str(tmp_path / "timing"),
        **env_extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "stampapp:app", "--bind", f"127.0.0.1:{port}", "--threads", str(threads)]
        + ["--worker-class", "shared.gunicorn_worker.ThreadWorker", "--workers", "1", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("gunicorn did not start")
            time.sleep(0.1)
    return proc, port


@pytest.fixture
def server(tmp_path):
    proc, port = _start(tmp_path, APP, threads=2)
    yield f"http://127.0.0.1:{port}", tmp_path / "timing"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


@pytest.fixture
def one_thread(tmp_path, request):
    proc, port = _start(tmp_path, SLOW_APP, threads=1, WAIT_BOUND=getattr(request, "param", "0.2"))
    yield port, tmp_path / "told.txt"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def _send(port: int, path: str) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    return conn


def test_once_a_request_waited_too_long_for_a_thread_the_next_ones_are_refused_at_once(one_thread):
    one_thread, told = one_thread
    first = _send(one_thread, "/slow/1")  # takes the only thread for a second
    time.sleep(0.1)
    second = _send(one_thread, "/slow/2")  # waits for it
    time.sleep(0.4)  # longer than the bound of 0.2 s
    started = time.monotonic()
    third = _send(one_thread, "/fast")
    refused = third.getresponse()
    body = refused.read()
    assert time.monotonic() - started < 0.5  # not after the slow ones
    assert refused.status == 503
    assert refused.getheader("Retry-After") == "3" and refused.getheader("Connection") == "close"
    assert json.loads(body) == {"error": {"code": "overloaded", "message": "The shop is busy; try again in a moment."}}
    health = _send(one_thread, "/health")  # never refused: answered after the slow ones
    for conn, path in ((first, "/slow/1"), (second, "/slow/2"), (health, "/health")):
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read()) == {"path": path}
    assert told.read_bytes() == b"GET /fast HTTP/1.1 3\n"  # the application heard of the refusal


def test_without_a_bound_nothing_is_refused(server):
    url, _ = server  # the stamping application has no Django settings: no bound
    for _ in range(3):
        with urllib.request.urlopen(url + "/x", timeout=5) as answer:
            assert answer.status == 200


def test_each_request_knows_when_it_was_ready_and_when_a_thread_took_it(server):
    url, timing = server
    before = time.monotonic()
    for _ in range(3):
        with urllib.request.urlopen(url + "/some/path", timeout=5) as answer:
            stamps = json.load(answer)
        ready, picked = stamps["gunicorn.ready_at"], stamps["gunicorn.picked_at"]
        assert before <= ready <= picked <= time.monotonic()


def test_the_timing_log_has_a_line_per_request(server):
    url, timing = server
    urllib.request.urlopen(url + "/timed", timeout=5).read()
    time.sleep(1.1)
    urllib.request.urlopen(url + "/timed", timeout=5).read()  # the second one flushes the first
    deadline = time.monotonic() + 5
    while not list(timing.glob("timing-*.tsv")) and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line.split("\t") for f in timing.glob("timing-*.tsv") for line in f.read_text().splitlines()]
    assert lines and lines[0][1:4] == ["GET", "/timed", "200"]
    assert float(lines[0][-1]) >= float(lines[0][4])  # the whole time covers the wait for a thread


@pytest.fixture
def lone_thread(tmp_path):
    proc, port = _start(tmp_path, APP, threads=1)
    yield port
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def test_a_connection_whose_request_has_not_come_waits_for_it_without_a_thread(lone_thread):
    silent = socket.create_connection(("127.0.0.1", lone_thread), timeout=10)  # connected, nothing sent yet
    time.sleep(0.3)  # accepted meanwhile
    started = time.monotonic()
    other = _send(lone_thread, "/other").getresponse()  # the only thread is free for it
    assert other.status == 200 and time.monotonic() - started < 1.0
    other.read()
    sent = time.monotonic()
    silent.sendall(b"GET /late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := silent.recv(65536):
        answer += chunk
    silent.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    stamps = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert sent <= stamps["gunicorn.ready_at"] <= stamps["gunicorn.picked_at"]  # ready once its request came


def test_without_keep_alive_a_new_connection_still_has_seconds_to_send_its_request(tmp_path):
    proc, port = _start(tmp_path, APP, 1, "--keep-alive", "0")  # no keep-alive: not no time to send
    try:
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        time.sleep(1.5)  # the worker's loop has gone round at least once meanwhile
        slow.sendall(b"GET /slow-client HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := slow.recv(65536):
            answer += chunk
        slow.close()
        assert answer.startswith(b"HTTP/1.1 200 ")  # as gthread, which gave it 5 s
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_a_stopping_worker_does_not_wait_long_for_a_request_that_has_not_come(tmp_path):
    proc, port = _start(tmp_path, APP, 1, "--keep-alive", "30", "--graceful-timeout", "30")
    silent = socket.create_connection(("127.0.0.1", port), timeout=10)  # a browser's preconnect, say
    time.sleep(0.3)  # accepted meanwhile
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=40)
    silent.close()
    assert time.monotonic() - started < 5  # as kept-alive connections: not the keep-alive or the grace


@pytest.mark.parametrize("one_thread", ["30"], indirect=True)  # a bound in time never reached here
def test_beyond_twice_as_many_waiting_as_threads_a_request_is_refused_before_any_waited_long(one_thread):
    one_thread, _ = one_thread
    busy = [_send(one_thread, "/slow/1")]  # the only thread
    time.sleep(0.3)
    busy += [_send(one_thread, f"/slow/{n}") for n in (2, 3)]  # two wait: twice the threads
    time.sleep(0.3)
    started = time.monotonic()
    refused = _send(one_thread, "/fast").getresponse()
    refused.read()
    assert refused.status == 503 and time.monotonic() - started < 0.5
    for n, conn in enumerate(busy, start=1):
        assert conn.getresponse().status == 200, n


#: The application of the held-client tests: a held route, holds set through ``/hold``, a slow route.
HELD_APP = """
import json, time
from django.conf import settings

settings.configure(GATEWAY_HELD_ANSWER_DELAY_SECONDS=float(__import__("os").environ.get("HELD_DELAY", "0.3")))

from shared import gunicorn_worker

gunicorn_worker.held_routes = (b"POST /orders/add ", b"POST /orders/add?")

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/hold":  # hold the caller's Authorization for the seconds in the query
        seconds = float(environ["QUERY_STRING"])
        gunicorn_worker.held[environ["HTTP_AUTHORIZATION"].encode("latin-1")] = time.monotonic() + seconds
    if path.startswith("/slow"):
        time.sleep(1.0)
    body = json.dumps({"path": path, "seen": gunicorn_worker.held_early["count"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.fixture
def held_server(tmp_path, request):
    proc, port = _start(tmp_path, HELD_APP, threads=1, HELD_DELAY=getattr(request, "param", "0.3"))
    yield port
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, token: str = "Bearer held") -> tuple:
    """One request on ``conn``: (status, headers, JSON body, seconds it took)."""
    started = time.monotonic()
    conn.request(method, path, body=b"{}" if method == "POST" else None, headers={"Authorization": token})
    answer = conn.getresponse()
    body = json.loads(answer.read())
    return answer.status, answer, body, time.monotonic() - started


def test_a_held_clients_placement_is_answered_rate_limited_after_the_delay_by_the_main_thread(held_server):
    conn = http.client.HTTPConnection("127.0.0.1", held_server, timeout=10)
    _exchange(conn, "GET", "/hold?5")
    busy = _send(held_server, "/slow/1")  # the only thread is busy for a second
    time.sleep(0.1)
    status, answer, body, took = _exchange(conn, "POST", "/orders/add")
    assert status == 429
    assert body == {
        "error": {"code": "rate_limited", "message": "Too many attempts; try again after Retry-After seconds."}
    }
    assert answer.getheader("Retry-After") in ("4", "5")  # what is left of the hold, whole seconds up
    assert answer.getheader("Connection") is None  # kept alive
    assert 0.3 <= took < 0.8  # the delay, and not behind the slow request
    assert busy.getresponse().status == 200
    again = _exchange(conn, "GET", "/after")  # the same connection, to the application
    assert again[0] == 200 and again[2]["path"] == "/after" and again[2]["seen"] == 1


def test_other_routes_other_clients_and_ended_holds_reach_the_application(held_server):
    conn = http.client.HTTPConnection("127.0.0.1", held_server, timeout=10)
    _exchange(conn, "GET", "/hold?6")  # long enough for the three requests below on a busy machine
    assert _exchange(conn, "POST", "/orders/add/Wishlist")[0] == 200  # not a held route
    assert _exchange(conn, "POST", "/orders/add", "Bearer other")[0] == 200  # not held
    status, answer, _, _ = _exchange(conn, "POST", "/orders/add")
    assert status == 429
    time.sleep(int(answer.getheader("Retry-After")) + 0.05)  # the server read its clock before answering
    conn = http.client.HTTPConnection("127.0.0.1", held_server, timeout=10)  # the first one's keep-alive is over
    status, _, body, _ = _exchange(conn, "POST", "/orders/add")  # the hold has ended
    assert status == 200 and body == {"path": "/orders/add", "seen": 1}


def test_a_held_client_that_asks_to_close_is_answered_by_a_thread(held_server):
    conn = http.client.HTTPConnection("127.0.0.1", held_server, timeout=10)
    _exchange(conn, "GET", "/hold?5")
    conn.request("POST", "/orders/add", body=b"{}", headers={"Authorization": "Bearer held", "Connection": "close"})
    assert conn.getresponse().status == 200  # the application would refuse it (the gateway does, from Redis)


@pytest.mark.parametrize("held_server", ["0"], indirect=True)
def test_without_a_delay_held_clients_are_answered_by_a_thread(held_server):
    conn = http.client.HTTPConnection("127.0.0.1", held_server, timeout=10)
    _exchange(conn, "GET", "/hold?5")
    assert _exchange(conn, "POST", "/orders/add")[0] == 200


def _read_answer(sock: socket.socket) -> bytes:
    """One whole answer with a JSON body (Content-Length) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        data += sock.recv(65536)
    return data


def test_a_held_clients_body_sent_after_its_head_is_waited_for_in_the_main_thread(held_server):
    with socket.create_connection(("127.0.0.1", held_server), timeout=10) as raw:
        raw.sendall(b"GET /hold?5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer held\r\n\r\n")
        assert _read_answer(raw).startswith(b"HTTP/1.1 200 ")  # held; the connection is kept alive
        busy = _send(held_server, "/slow/1")  # the only thread is busy for a second
        time.sleep(0.1)
        raw.sendall(b"POST /orders/add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer held\r\nContent-Length: 2\r\n\r\n")
        time.sleep(0.2)
        raw.sendall(b"{}GET /after HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer held\r\n\r\n")  # and the next request
        answers = b""
        while answers.count(b"HTTP/1.1 ") < 2 or not answers.rstrip().endswith(b"}"):
            answers += raw.recv(65536)
    first, second = answers.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"429 ") and b'"rate_limited"' in first
    assert second.startswith(b"200 ") and b'"path": "/after", "seen": 1' in second
    assert busy.getresponse().status == 200


class _NotedMeanwhile(dict):
    """Holds to which an application thread adds one while the main thread walks them."""

    def _walk(self, view):
        for n, item in enumerate(view):
            if n == 0:
                self[b"Bearer new"] = time.monotonic() + 60
            yield item

    def items(self):
        return self._walk(dict.items(self))

    def keys(self):
        return self._walk(dict.keys(self))


def test_pruning_the_holds_survives_a_hold_noted_meanwhile(monkeypatch):
    # A drop crashed a gateway worker here: "dictionary changed size during iteration" while
    # the main thread dropped ended holds and a thread noted a new one; every connection of
    # that process was cut.
    from collections import deque

    from shared import gunicorn_worker

    now = time.monotonic()
    holds = _NotedMeanwhile({b"Bearer ended": now - 1, b"Bearer held": now + 60})
    monkeypatch.setattr(gunicorn_worker, "held", holds)
    worker = object.__new__(gunicorn_worker.ThreadWorker)
    worker._held_waiting, worker._pruned = deque(), now - 60
    worker._answer_held()
    left = dict.keys(holds)
    assert b"Bearer ended" not in left and b"Bearer held" in left  # a new hold may be there too

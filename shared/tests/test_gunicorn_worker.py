"""The gateway's gunicorn worker: gthread, with each request's wait for a thread in its environ."""

from __future__ import annotations

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


@pytest.fixture
def server(tmp_path):
    (tmp_path / "stampapp.py").write_text(APP)
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root), os.environ.get("PYTHONPATH", "")]),
        "GUNICORN_TIMING_DIR": str(tmp_path / "timing"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "stampapp:app", "--bind", f"127.0.0.1:{port}", "--threads", "2"]
        + ["--worker-class", "shared.gunicorn_worker.ThreadWorker", "--workers", "1"],
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
    yield f"http://127.0.0.1:{port}", tmp_path / "timing"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


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

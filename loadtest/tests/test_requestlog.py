"""The request log of ``loadtest ... --request-log``: a line per request."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))

import requestlog  # noqa: E402


def test_each_request_is_a_line_of_when_it_was_sent_its_time_status_and_name(tmp_path):
    log = requestlog.RequestLog(tmp_path, 4242)
    log.record(
        request_type="POST",
        name="POST /orders/add (polite) [won]",
        response_time=912.34,
        response_length=40,
        response=SimpleNamespace(status_code=201),
        exception=None,
        start_time=1795792221.12345,
        context={"member": 1842},
    )
    log.record(request_type="POST", name="POST /orders/add", response_time=5000.0, response=None, start_time=2.0)
    lines = (tmp_path / "requests-4242.tsv").read_text().splitlines()  # written before the file is closed
    log.close()
    assert lines == [
        "1795792221.1235\t912.3\t201\tPOST /orders/add (polite) [won]\t1842",  # the member who clicked
        "2.0000\t5000.0\t0\tPOST /orders/add\t",  # no answer (a connection error): status 0; no member named
    ]


def test_a_second_process_writes_its_own_file(tmp_path):
    first, second = requestlog.RequestLog(tmp_path, 1), requestlog.RequestLog(tmp_path, 2)
    for n, log in enumerate((first, second)):
        log.record(name="GET /x", response_time=1.0, response=SimpleNamespace(status_code=200), start_time=float(n))
        log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requests-1.tsv", "requests-2.tsv"]

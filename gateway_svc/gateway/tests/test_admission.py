"""The admission gate: places in flight, a bounded wait, refusals; and the gateway answering with it."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import Client

from gateway import admission
from gateway.admission import Bounds, Gate


def wait_until(condition, what: str, timeout: float = 10.0) -> None:
    """Poll until ``condition()`` holds (a wait for a state, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


# ----------------------------------------------------------------------------- the gate alone


def test_places_in_flight_then_refusals_when_no_wait_is_allowed():
    gate = Gate("order", Bounds(in_flight=2, queue=0, wait_seconds=0))
    assert gate.enter() and gate.enter()
    assert gate.enter() is False
    assert gate.state() == {
        "in_flight": 2,
        "in_flight_limit": 2,
        "waiting": 0,
        "queue_limit": 0,
        "refused": 1,
        "refused_late": 0,
    }
    gate.leave()
    assert gate.enter() is True


def test_a_waiter_gets_the_place_a_holder_leaves_and_a_full_queue_refuses_at_once():
    gate = Gate("order", Bounds(in_flight=1, queue=1, wait_seconds=30))
    assert gate.enter()
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(gate.enter()))
    waiter.start()
    wait_until(lambda: gate.state()["waiting"] == 1, "one waiter")
    assert gate.enter() is False  # the queue is full: refused without waiting
    gate.leave()
    waiter.join(timeout=10)
    assert got == [True]
    assert gate.state()["in_flight"] == 1 and gate.state()["waiting"] == 0


def test_a_waiter_is_refused_when_its_wait_runs_out():
    gate = Gate("order", Bounds(in_flight=1, queue=1, wait_seconds=0.05))
    assert gate.enter()
    assert gate.enter() is False
    assert gate.state()["waiting"] == 0 and gate.state()["refused"] == 1


def test_a_freed_place_goes_to_the_longest_waiter_not_to_a_newcomer():
    gate = Gate("order", Bounds(in_flight=1, queue=3, wait_seconds=30))
    assert gate.enter()
    order: list[str] = []

    def wait(name: str) -> None:
        assert gate.enter()
        order.append(name)
        gate.leave()

    threads = []
    for n, name in enumerate(("first", "second", "third"), start=1):
        threads.append(threading.Thread(target=wait, args=(name,)))
        threads[-1].start()
        wait_until(lambda n=n: gate.state()["waiting"] == n, f"{name} waiting")
    gate.leave()
    for t in threads:
        t.join(timeout=10)
    assert order == ["first", "second", "third"]
    assert gate.state()["in_flight"] == 0


def test_under_concurrency_never_more_in_flight_than_the_bound_and_every_place_comes_back():
    gate = Gate("order", Bounds(in_flight=3, queue=4, wait_seconds=0.5))
    lock = threading.Lock()
    inside = peak = 0
    outcomes: list[bool] = []

    def one(_: int) -> None:
        nonlocal inside, peak
        if not gate.enter():
            outcomes.append(False)
            return
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0.002)
        with lock:
            inside -= 1
        gate.leave()
        outcomes.append(True)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, range(400)))
    assert peak <= 3
    assert len(outcomes) == 400 and outcomes.count(False) == gate.state()["refused"]
    assert gate.state()["in_flight"] == 0 and gate.state()["waiting"] == 0
    assert gate.enter() and gate.enter() and gate.enter()  # all three places are free again


def test_retry_after_is_whole_seconds_within_the_jitter(settings):
    settings.GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS = 2
    settings.GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS = 3
    seen = {admission.retry_after() for _ in range(400)}
    assert seen == {2, 3, 4, 5}


# ----------------------------------------------------------------------------- through the gateway


@pytest.fixture
def tight_catalog(settings):
    """One catalog request in flight per process, no waiting."""
    settings.GATEWAY_ADMISSION = {**settings.GATEWAY_ADMISSION, "catalog": (1, 0, 0.0)}
    admission.reset()
    yield
    admission.reset()


def _slow_read_in_flight() -> tuple[threading.Thread, list]:
    """A catalog read the upstream answers after a second, holding the catalog's only place."""
    answers: list = []
    slow = threading.Thread(target=lambda: answers.append(Client().get("/cloth/detail/999")))
    slow.start()
    wait_until(lambda: admission.gate("catalog").state()["in_flight"] == 1, "the slow read in flight")
    return slow, answers


def test_beyond_the_bound_the_gateway_answers_503_overloaded_with_retry_after(client, tight_catalog, settings):
    slow, answers = _slow_read_in_flight()
    r = client.get("/cloth/detail/1")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "overloaded"
    low = settings.GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS
    assert low <= int(r["Retry-After"]) <= low + settings.GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS
    slow.join(timeout=10)
    assert answers[0].status_code == 200  # the admitted request completed
    assert client.get("/cloth/detail/1").status_code == 200  # its place came back


def test_a_refusal_is_an_answer_not_an_error_log_line_while_an_upstream_down_still_is(
    client, tight_catalog, settings, dead_url, caplog
):
    slow, _ = _slow_read_in_flight()
    with caplog.at_level(logging.ERROR, logger="django.request"):
        assert client.get("/cloth/detail/1").status_code == 503  # overloaded: counted, not logged
        slow.join(timeout=10)
        assert not [r for r in caplog.records if r.name == "django.request"]
        settings.SERVICE_URLS = {**settings.SERVICE_URLS, "catalog": dead_url}
        r = client.get("/cloth/list")
    assert r.json()["error"]["code"] == "upstream_unavailable"
    assert [r.status_code for r in caplog.records if r.name == "django.request"] == [503]


def test_one_upstream_full_does_not_refuse_another(client, tight_catalog, token):
    slow, _ = _slow_read_in_flight()
    assert client.get("/orders/list/7", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    slow.join(timeout=10)


def test_a_waiting_request_is_admitted_when_the_place_frees(client, settings):
    settings.GATEWAY_ADMISSION = {**settings.GATEWAY_ADMISSION, "catalog": (1, 1, 30.0)}
    admission.reset()
    slow, answers = _slow_read_in_flight()
    r = client.get("/cloth/detail/1")  # waits for the slow read, then goes
    assert r.status_code == 200
    slow.join(timeout=10)
    assert answers[0].status_code == 200
    admission.reset()


def test_health_answers_while_shedding_and_says_so(client, tight_catalog):
    assert client.get("/health").json()["status"] == "ok"
    slow, _ = _slow_read_in_flight()
    assert client.get("/cloth/detail/1").status_code == 503
    r = client.get("/health")  # not behind the full gate
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "shedding"
    assert body["shedding"] == {"catalog": 1}
    assert body["admission"]["catalog"]["in_flight"] == 1
    slow.join(timeout=10)


@pytest.fixture
def token():
    from shared import tokens

    access, _ = tokens.issue_access_token(member_id=7, session_id="sid-7")
    return access

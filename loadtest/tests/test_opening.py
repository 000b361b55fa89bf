"""A drop's opening: every buyer waiting for it clicks at it, in an order that favours none."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import gevent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))

import opening  # noqa: E402


def _wait_all(gate: opening.Opening, at: float, names: list[str]) -> list[tuple[str, float]]:
    woke: list[tuple[str, float]] = []

    def user(name: str) -> None:
        gate.wait(at)
        woke.append((name, time.time()))

    gevent.joinall([gevent.spawn(user, name) for name in names], timeout=5)
    return woke


def test_users_that_started_waiting_first_are_not_released_first():
    # As locust spawns a fixed-count class (the hammerers) before the weighted one.
    names = [f"hammerer-{i}" for i in range(60)] + [f"polite-{i}" for i in range(540)]
    at = time.time() + 0.3
    woke = _wait_all(opening.Opening(), at, names)
    assert sorted(name for name, _ in woke) == sorted(names)
    assert min(t for _, t in woke) >= at
    order = [name for name, _ in woke]
    first_tenth = order[: len(order) // 10]
    # 60 hammerers among 600 users: a tenth of the release order holds about 6, not all 60.
    assert sum(name.startswith("hammerer") for name in first_tenth) < 30
    assert order != names


def test_a_moment_already_past_does_not_wait():
    started = time.time()
    woke = _wait_all(opening.Opening(), started - 1.0, ["late"])
    assert [name for name, _ in woke] == ["late"]
    assert woke[0][1] - started < 0.05


def test_waiters_for_different_moments_are_released_at_their_own():
    gate = opening.Opening()
    now = time.time()
    woke: dict[str, float] = {}

    def user(name: str, at: float) -> None:
        gate.wait(at)
        woke[name] = time.time()

    gevent.joinall([gevent.spawn(user, "early", now + 0.1), gevent.spawn(user, "late", now + 0.4)], timeout=5)
    assert now + 0.1 <= woke["early"] < now + 0.35
    assert woke["late"] >= now + 0.4


def test_a_buyer_loads_the_drops_page_in_the_last_seconds_before_it_opens():
    opens = 1_000.0
    moments = [opening.page_view_at(opens, now=opens - 12.0, rng=random.Random(seed)) for seed in range(200)]
    low, high = opening.PAGE_VIEW_SECONDS_BEFORE
    assert all(opens - high <= at <= opens - low for at in moments)
    # spread over the window, not one wave
    assert max(moments) - min(moments) > (high - low) / 2


def test_a_buyer_who_comes_after_that_window_loads_no_page():
    opens = 1_000.0
    late = opens - opening.PAGE_VIEW_SECONDS_BEFORE[0] + 0.01
    assert all(opening.page_view_at(opens, now=late, rng=random.Random(seed)) is None for seed in range(50))
    assert opening.page_view_at(opens, now=opens + 5.0) is None


def _stats(monkeypatch):
    monkeypatch.setenv("LOCUST_SKIP_MONKEY_PATCH", "1")  # the request statistics alone, no gevent patching
    from locust.stats import RequestStats

    return RequestStats()


def test_the_sales_total_leaves_out_the_page_views_before_the_opening(monkeypatch):
    stats = _stats(monkeypatch)
    page = f"GET /cloth/detail/{{id}}{opening.BEFORE_THE_OPENING}"
    for _ in range(300):
        stats.log_request("GET", page, 8, 100)
    stats.log_request("GET", f"{page} [overloaded]", 3, 90)  # a refusal is a labelled answer
    for ms in range(100, 1100, 10):  # 100 placements, 100-1090 ms
        stats.log_request("POST", "POST /orders/add [overloaded]", ms, 80)
    stats.log_error("POST", "POST /orders/add", "HTTP 500")

    sale = opening.sale_total(stats)
    assert stats.total.num_requests == 401  # locust's own total holds the page views
    assert sale.num_requests == 100
    assert sale.num_failures == 1
    placements = stats.get("POST /orders/add [overloaded]", "POST")
    assert sale.get_response_time_percentile(0.99) == placements.get_response_time_percentile(0.99)
    assert sale.get_response_time_percentile(0.5) >= 500
    assert stats.total.get_response_time_percentile(0.5) == 8


def test_without_page_views_the_sales_total_is_locusts_own(monkeypatch):
    stats = _stats(monkeypatch)
    for ms in (5, 20, 300, 900, 40):
        stats.log_request("POST", "POST /orders/add [won]", ms, 10)
        stats.log_request("GET", "GET /cloth/detail/{id}", ms // 5, 10)
    stats.log_error("PUT", "PUT /payment/{order_id}", "HTTP 502")
    sale = opening.sale_total(stats)
    assert sale.num_requests == stats.total.num_requests == 10
    assert sale.num_failures == stats.total.num_failures == 1
    assert sale.response_times == stats.total.response_times
    assert sale.name == "Aggregated"

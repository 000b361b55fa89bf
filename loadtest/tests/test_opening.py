"""A drop's opening: every buyer waiting for it clicks at it, in an order that favours none."""

from __future__ import annotations

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

"""The summaries' figures that need no stack: each drop population's own latencies, the hop's price."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import run  # noqa: E402


def _row(p50: float, p95: float, p99: float, requests: int = 10) -> dict:
    return {"requests": requests, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def test_each_population_keeps_its_own_won_latency():
    # One hammerer win at 910 ms must not stand for the polite buyers' 450 ms median: the
    # summary's latency_won_ms takes the worse population's figure, each population's own
    # figures say who waited how long.
    eps = {
        "POST /orders/add (polite) [won]": _row(450.0, 1000.0, 1200.0, requests=552),
        "POST /orders/add (hammerer) [won]": _row(910.0, 910.0, 910.0, requests=1),
        "POST /orders/add (polite) [overloaded]": _row(41.0, 620.0, 970.0),
    }
    assert run.population_latency(eps, "polite", "won") == {"p50": 450.0, "p95": 1000.0, "p99": 1200.0}
    assert run.population_latency(eps, "hammerer", "won") == {"p50": 910.0, "p95": 910.0, "p99": 910.0}


def test_a_population_without_such_answers_has_no_latency():
    eps = {"POST /orders/add (polite) [won]": _row(450.0, 1000.0, 1200.0)}
    assert run.population_latency(eps, "hammerer", "won") is None
    assert run.population_latency(eps, "polite", "sold_out") is None


class _Stack:
    """A stack whose gateway was given ``env`` (as its supervisor configuration would say)."""

    def __init__(self, **env: str):
        self.env = env

    def setting(self, service: str, key: str, default: str = "") -> str:
        return self.env.get(key, default) if service == "gateway" else default


def test_a_fairness_drop_says_when_the_order_limit_is_not_the_shops():
    # The README's load-test block once exported the cost benchmark's raised limit for every run.
    note = run.order_limit_note(_Stack(RATE_ORDER_ATTEMPTS_PER_MEMBER="100000"))
    assert note is not None
    assert "RATE_ORDER_ATTEMPTS_PER_MEMBER=100000" in note and "restart gateway" in note
    assert "off" in run.order_limit_note(_Stack(RATE_ORDER_ATTEMPTS_PER_MEMBER="0"))
    assert "RATE_ORDER_WINDOW_SECONDS=0.1" in run.order_limit_note(_Stack(RATE_ORDER_WINDOW_SECONDS="0.1"))


def test_the_shops_own_order_limit_needs_no_note():
    assert run.order_limit_note(_Stack()) is None
    assert run.order_limit_note(_Stack(RATE_ORDER_ATTEMPTS_PER_MEMBER="1", RATE_ORDER_WINDOW_SECONDS="0.5")) is None


def test_a_drops_summary_says_how_its_buyers_reached_the_opening():
    warm = run.load_generator(run.parse_args(["drop"]))
    cold = run.load_generator(run.parse_args(["drop", "--cold-opening"]))
    assert warm["opening"] == "page view first" and "page" in warm["description"]
    assert cold["opening"] == "cold" and "cold opening" in cold["description"]
    assert "opening" not in run.load_generator(run.parse_args(["browse"]))


def test_the_hop_is_priced_on_reads_the_gateway_forwards():
    # The gateway repeats the catalog's cached detail itself, with no hop: measured against the
    # catalog it can answer faster, and the difference comes out negative. The hop's price is
    # that of the reads it forwards; the repeated ones keep a figure of their own.
    eps = {
        "direct GET /cloth/detail/{id}": _row(30.0, 60.0, 75.0),
        "gateway, forwarded GET /cloth/detail/{id}": _row(34.0, 66.0, 90.0),
        "gateway GET /cloth/detail/{id}": _row(4.0, 61.0, 150.0),
    }
    figures = run.hop_figures(eps)
    assert figures["gateway_hop_ms"] == {"p50": 4.0, "p95": 6.0, "p99": 15.0}
    assert figures["gateway_as_buyers_read_it_vs_direct_ms"] == {"p50": -26.0, "p95": 1.0, "p99": 75.0}


def test_a_hop_run_without_a_route_has_no_figure_for_it():
    eps = {"direct GET /cloth/detail/{id}": _row(30.0, 60.0, 75.0)}
    assert run.hop_figures(eps)["gateway_hop_ms"] == {"p50": None, "p95": None, "p99": None}

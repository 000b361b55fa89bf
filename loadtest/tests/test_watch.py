"""The watch screen's figures from two scrapes of /metrics (pure: Prometheus text in, figures out)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import watch  # noqa: E402

ORDER = """
shop_orders_total{{outcome="won"}} {won}
shop_orders_total{{outcome="sold_out"}} {sold_out}
shop_orders_total{{outcome="limit_exceeded"}} {limit}
shop_orders_total{{outcome="not_on_sale"}} 0
shop_orders_total{{outcome="refused"}} 1
shop_outbox_waiting_rows{{service="order"}} {outbox}
shop_outbox_oldest_waiting_seconds{{service="order"}} 3.5
shop_consumer_lag_messages{{group="order",topic="payments"}} 7
shop_dead_letters_stored{{consumer="order",state="open"}} 2
"""
INVENTORY = """
shop_gate_available_units{{cloth="Hoodie",cloth_id="42",size="S",variant_id="421"}} {left}
shop_stock_available_units{{cloth="Hoodie",cloth_id="42",size="S",variant_id="421"}} {left}
shop_stock_sold_units{{cloth="Hoodie",cloth_id="42",size="S",variant_id="421"}} 3
shop_stock_total_units{{cloth="Hoodie",cloth_id="42",size="S",variant_id="421"}} 10
shop_gate_available_units{{cloth="Cap",cloth_id="43",size="ONE",variant_id="431"}} 5
shop_gate_drift_units{{cloth_id="42"}} {drift}
"""


def snap(at: float, *, won, sold_out, limit, outbox, left, drift) -> watch.Snapshot:
    s = watch.Snapshot(at)
    s.by_service["order"] = watch.parse(ORDER.format(won=won, sold_out=sold_out, limit=limit, outbox=outbox))
    s.by_service["inventory"] = watch.parse(INVENTORY.format(left=left, drift=drift))
    return s


def test_rates_come_from_two_scrapes_and_units_per_size_of_the_cloth_watched():
    before = snap(100.0, won=10, sold_out=100, limit=4, outbox=0, left=7, drift=0)
    after = snap(102.0, won=14, sold_out=300, limit=6, outbox=12, left=3, drift=2)
    figs = watch.figures(before, after, cloth="42")
    assert figs["rates"]["won"] == 2.0 and figs["rates"]["sold_out"] == 100.0
    assert figs["rates"]["refused"] == 1.0  # limit_exceeded + not_on_sale + other refusals
    assert figs["rates"]["placements"] == 103.0
    assert list(figs["stock"]) == [("42", "Hoodie", "421", "S")]  # the cap is another cloth
    assert figs["stock"][("42", "Hoodie", "421", "S")] == {"gate": 3, "available": 3, "sold": 3, "total": 10}
    assert figs["outbox"]["order"] == (12, 3.5) and figs["lag"] == {("order", "payments"): 7}
    assert figs["dead_letters"]["order"] == 2 and figs["drift"] == {"42": 2}
    assert set(figs["down"]) == {"member", "catalog", "payment"}
    screen = watch.render(figs, title="cloth 42")
    assert "Hoodie #42" in screen and "won/s     2.0" in screen and "cloth 42: 2" in screen
    assert "no /metrics from: member, catalog, payment" in screen


def test_the_first_screen_has_no_rates_and_a_restarted_service_counts_from_zero():
    first = snap(0.0, won=50, sold_out=0, limit=0, outbox=0, left=1, drift=0)
    assert watch.figures(None, first)["rates"]["won"] is None
    restarted = snap(1.0, won=3, sold_out=0, limit=0, outbox=0, left=1, drift=0)
    assert watch.figures(first, restarted)["rates"]["won"] == 3.0
    assert "won/s       -" in watch.render(watch.figures(None, first))


def test_sold_out_answers_the_gateway_repeated_count_with_the_order_services():
    gateway = 'shop_repeated_answers_total{{code="sold_out",upstream="order"}} {n}\n'
    before = snap(100.0, won=10, sold_out=100, limit=4, outbox=0, left=0, drift=0)
    after = snap(102.0, won=10, sold_out=110, limit=4, outbox=0, left=0, drift=0)
    before.by_service["gateway"] = watch.parse(gateway.format(n=500))
    after.by_service["gateway"] = watch.parse(gateway.format(n=1500))
    figs = watch.figures(before, after)
    assert figs["rates"]["sold_out"] == 5.0 + 500.0 and figs["rates"]["placements"] == 505.0
    assert figs["totals"]["sold_out"] == 110 + 1500
    assert watch.base_urls("e2e")["gateway"] == "http://127.0.0.1:18009"

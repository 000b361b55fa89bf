"""/metrics of the order service: placements counted by outcome, requests by view and status."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from shared import errors

pytestmark = pytest.mark.django_db


def _count(outcome: str) -> float:
    return REGISTRY.get_sample_value("shop_orders_total", {"outcome": outcome}) or 0.0


def test_placements_are_counted_by_outcome(place, upstreams):
    before = {o: _count(o) for o in ("won", "sold_out", "limit_exceeded", "refused")}
    upstreams.stock[101] = 1
    assert place(1).status_code == 201
    assert place(2).status_code == 409  # sold out
    upstreams.fail_reserve_with = errors.LimitExceeded()
    assert place(3, [{"variant_id": 102, "quantity": 1}]).status_code == 409
    assert place(4, [{"variant_id": "x", "quantity": 1}]).status_code == 400
    assert {o: _count(o) - n for o, n in before.items()} == {
        "won": 1,
        "sold_out": 1,
        "limit_exceeded": 1,
        "refused": 1,
    }


def test_metrics_answer_prometheus_text_with_requests_by_view_and_the_outbox(place, upstreams, anon_client):
    place(1)
    r = anon_client.get("/metrics")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/plain")
    text = r.content.decode()
    assert 'shop_http_request_duration_seconds_count{method="POST",status="201",view="orders/add"}' in text
    assert 'shop_outbox_waiting_rows{service="order"} 1.0' in text  # the OrderPlaced row, not yet published
    assert "shop_outbox_oldest_waiting_seconds" in text

"""The inventory's scrape-time gauges: the stock of the drops being watched, in the gate and in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily, Metric

from inventory import gate, selectors
from inventory.models import StockItem
from shared.redis import get_redis

_LABELS = ["cloth_id", "cloth", "variant_id", "size"]


def collect_stock() -> Iterable[Metric]:
    cloth_ids = selectors.drop_cloth_ids(hours=settings.INVENTORY_METRICS_DROP_HOURS)
    if not cloth_ids:
        return
    items = list(StockItem.objects.filter(cloth_id__in=cloth_ids).order_by("cloth_id", "variant_id"))
    pipe = get_redis().pipeline(transaction=False)
    for cloth_id in cloth_ids:
        pipe.hgetall(gate.Keys(cloth_id).avail)
    gates = {
        cloth_id: {int(v): int(n) for v, n in avail.items()}
        for cloth_id, avail in zip(cloth_ids, pipe.execute(), strict=True)
    }
    in_gate = GaugeMetricFamily(
        "shop_gate_available_units", "Units the stock gate (Redis) still lets through, per variant.", labels=_LABELS
    )
    in_db = GaugeMetricFamily(
        "shop_stock_available_units", "Available units in PostgreSQL (total - reserved - sold).", labels=_LABELS
    )
    sold = GaugeMetricFamily("shop_stock_sold_units", "Units sold, in PostgreSQL.", labels=_LABELS)
    total = GaugeMetricFamily("shop_stock_total_units", "Units owned, in PostgreSQL.", labels=_LABELS)
    for item in items:
        labels = [str(item.cloth_id), item.cloth_name, str(item.variant_id), item.size]
        if item.variant_id in gates.get(item.cloth_id, {}):
            in_gate.add_metric(labels, gates[item.cloth_id][item.variant_id])
        in_db.add_metric(labels, item.available)
        sold.add_metric(labels, item.sold)
        total.add_metric(labels, item.total)
    yield from (in_gate, in_db, sold, total)

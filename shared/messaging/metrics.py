"""Scrape-time gauges every service has: its outbox backlog and its dead letters (read from its database)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from shared.messaging.models import DeadLetter, OutboxEvent


def collect_outbox() -> Iterable[Metric]:
    service = settings.SERVICE_NAME
    waiting = OutboxEvent.objects.filter(published_at__isnull=True).aggregate(n=Count("id"), oldest=Min("occurred_at"))
    rows = GaugeMetricFamily("shop_outbox_waiting_rows", "Outbox rows not yet published.", labels=["service"])
    rows.add_metric([service], waiting["n"])
    yield rows
    age = GaugeMetricFamily(
        "shop_outbox_oldest_waiting_seconds", "Age of the oldest outbox row not yet published.", labels=["service"]
    )
    oldest = waiting["oldest"]
    age.add_metric([service], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
    yield age


def collect_dead_letters() -> Iterable[Metric]:
    family = GaugeMetricFamily(
        "shop_dead_letters_stored",
        "Dead letters in the service's table, by consumer and state.",
        labels=["consumer", "state"],
    )
    counts = DeadLetter.objects.values_list("consumer", "state").annotate(n=Count("id")).order_by()
    for consumer, state, n in counts:
        family.add_metric([consumer, state], n)
    yield family

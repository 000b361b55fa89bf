"""Prometheus metrics of every service: requests per view, the domain's counters, and gauges read at scrape time.

Each service runs several processes (web workers, the Celery worker, the consumer), so
prometheus-client runs in its multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set
(``manage_all.py`` gives each service of a stack its own directory and empties it when
the stack starts): every process writes its counters to memory-mapped files there, and
``GET /metrics`` on the service's own port adds them all up. Without the variable (tests,
a one-off command) the metrics live in the process.

What is a count of something stored (outbox rows waiting, dead letters, the gate's units)
is not counted per request: it is read when Prometheus scrapes, by the collectors a
service registers with :func:`register_scrape_collector`. Per request, the middleware does
one histogram observation (its ``_count`` is the requests by status).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger(__name__)

_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _MULTIPROC_DIR:
    os.makedirs(_MULTIPROC_DIR, exist_ok=True)
    # Files are named by process; containers sharing the directory (compose: a service's web,
    # worker and consumer) each have a pid 1, so the host name goes in the name too.
    _HOST = socket.gethostname().replace("_", "-")
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue(lambda: f"{_HOST}-{os.getpid()}")

#: From a cached read (well under a millisecond) to a request that waited on a slow upstream.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Histogram(
    "shop_http_request_duration_seconds",
    "Time to answer a request, by view (the URL pattern), method and status; _count is the requests.",
    ["view", "method", "status"],
    buckets=LATENCY_BUCKETS,
)

# --- the domain's counters (each incremented where the thing happens) ----------------------
ORDERS = Counter(
    "shop_orders",
    "Order placements by outcome: won, sold_out, limit_exceeded, not_on_sale, refused (other 4xx), failed.",
    ["outcome"],
)
PAYMENTS = Counter("shop_payments", "Payment attempts by outcome: completed, declined.", ["outcome"])
DEAD_LETTERS = Counter("shop_dead_letters", "Events a consumer gave up on (dead-lettered).", ["consumer", "topic"])
PUBLISH_DELAY = Histogram(
    "shop_outbox_publish_delay_seconds",
    "From an event's commit to the broker's acknowledgement, by the outbox relay.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
CONSUMER_LAG = Gauge(
    "shop_consumer_lag_messages",
    "Messages on the broker not yet consumed, per consumer group and topic (as the consumer last saw).",
    ["group", "topic"],
    multiprocess_mode="mostrecent",
)
GATE_DRIFT = Gauge(
    "shop_gate_drift_units",
    "Units by which the stock gate differs from PostgreSQL per cloth (check_invariants' gate check, run by beat).",
    ["cloth_id"],
    multiprocess_mode="mostrecent",
)
GATE_DRIFT_CHECKED = Gauge(
    "shop_gate_drift_checked_timestamp_seconds",
    "When the gate was last compared with PostgreSQL for the drift metric.",
    multiprocess_mode="mostrecent",
)

REPEATED_ANSWERS = Counter(
    "shop_repeated_answers",
    "Answers the gateway gave for a service without asking it, repeating the service's own "
    "answer to the same request (gateway/answers.py), by upstream service and error code ('ok' for a success).",
    ["upstream", "code"],
)

_request_children: dict[tuple[str, str, int], object] = {}
_repeated_children: dict[tuple[str, str], object] = {}
#: The outcomes of a placement a drop is watched by; other refusals count as "refused".
_ORDER_REFUSALS = ("sold_out", "limit_exceeded", "not_on_sale")
_order_children = {o: ORDERS.labels(o) for o in ("won", "repeated", *_ORDER_REFUSALS, "refused", "failed")}


def count_order_outcome(post: Callable) -> Callable:
    """Count each placement a view answers by its outcome (one counter increment)."""

    @functools.wraps(post)
    def counted(view, request, *args, **kwargs):
        try:
            response = post(view, request, *args, **kwargs)
        except Exception as exc:
            code = getattr(exc, "code", None)
            if code in _ORDER_REFUSALS:
                _order_children[code].inc()
            else:
                _order_children["refused" if getattr(exc, "status_code", 500) < 500 else "failed"].inc()
            raise
        _order_children["won" if response.status_code == 201 else "repeated"].inc()
        return response

    return counted


def count_repeated_answer(upstream: str, code: str) -> None:
    key = (upstream, code)
    child = _repeated_children.get(key)
    if child is None:
        child = _repeated_children[key] = REPEATED_ANSWERS.labels(upstream, code)
    child.inc()


def observe_request(view: str, method: str, status: int, seconds: float) -> None:
    key = (view, method, status)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = REQUESTS.labels(view, method, str(status))
    child.observe(seconds)


class RequestMetricsMiddleware:
    """First in the chain: every request's time and status, labelled with its URL pattern."""

    def __init__(self, get_response: Callable):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        view = getattr(request, "metrics_view", None) or (match.route if match is not None else "unmatched")
        observe_request(view, request.method, response.status_code, time.perf_counter() - started)
        return response


# --- the /metrics answer ----------------------------------------------------------------------

_scrape_collectors: dict[str, Callable[[], Iterable[Metric]]] = {}


class _ScrapeCollector(Collector):
    """Gauges computed when Prometheus asks (database and Redis reads), never per request.

    A source that fails (its database down) is left out of that scrape and named in
    ``shop_metrics_collector_failed``; the rest still answer.
    """

    def collect(self) -> Iterable[Metric]:
        failed = GaugeMetricFamily(
            "shop_metrics_collector_failed", "Scrape-time gauges that could not be read.", labels=["collector"]
        )
        for name, collect in _scrape_collectors.items():
            try:
                families = list(collect())
            except Exception as exc:  # noqa: BLE001 - a scrape answers with what it has; the rest says why
                logger.warning("metrics: %s not collected: %s", name, exc)
                failed.add_metric([name], 1)
                continue
            yield from families
        yield failed


def register_scrape_collector(name: str, collect: Callable[[], Iterable[Metric]]) -> None:
    """Add gauges that ``GET /metrics`` computes from stored state (once per name per process)."""
    _scrape_collectors[name] = collect


def render() -> tuple[bytes, str]:
    """The Prometheus text of this service: all its processes' metrics and the scrape-time gauges."""
    if _MULTIPROC_DIR:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    registry.register(_ScrapeCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _ProcessMetrics(Collector):
    """This process's own metrics (single-process mode: tests, a command)."""

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()


def metrics_view(request):
    """``GET /metrics``: Prometheus text. Not in the gateway's allowlist: only reachable inside."""
    from django.http import HttpResponse

    body, content_type = render()
    return HttpResponse(body, content_type=content_type)

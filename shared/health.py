"""GET /health for a service: its database, Redis, Kafka and (if it has one) its consumer.

Database or Redis down -> 503 (the service cannot do its job). Kafka down, or the
service's consumer not (yet) holding its partitions -> 200 with status "degraded": orders
are still taken and events wait until they are applied. ``up`` waits for "ok", so the
first drop after it is not held up by consumers still joining their groups.
"""

from __future__ import annotations

import functools
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from shared.messaging import handlers
from shared.messaging.consumer import has_assigned_consumer
from shared.messaging.kafka import broker_reachable
from shared.redis import get_redis

_kafka_cache: dict[str, float | bool] = {"at": 0.0, "ok": False}


def _kafka_ok() -> bool:
    # Asking the broker costs a round trip or a timeout; a few seconds of staleness is fine.
    if time.monotonic() - float(_kafka_cache["at"]) > 5:
        _kafka_cache["ok"] = broker_reachable(timeout=1.0)
        _kafka_cache["at"] = time.monotonic()
    return bool(_kafka_cache["ok"])


@functools.cache
def _consumes_events() -> bool:
    return bool(handlers.topics())


def health(request) -> JsonResponse:
    checks: dict[str, str] = {}
    if settings.DATABASES:
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception:  # noqa: BLE001 - any failure is "down" for a health check
            checks["database"] = "down"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception:  # noqa: BLE001
        checks["redis"] = "down"
    checks["kafka"] = "ok" if _kafka_ok() else "down"
    if _consumes_events() and checks["redis"] == "ok":
        checks["consumer"] = "ok" if has_assigned_consumer() else "joining"
    hard_down = any(v == "down" for k, v in checks.items() if k != "kafka")
    soft = checks["kafka"] == "down" or checks.get("consumer") == "joining"
    status = "down" if hard_down else ("degraded" if soft else "ok")
    return JsonResponse(
        {"status": status, "service": settings.SERVICE_NAME, "checks": checks}, status=503 if hard_down else 200
    )

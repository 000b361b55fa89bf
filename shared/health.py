"""GET /health for a service: its database, Redis and Kafka.

Database or Redis down -> 503 (the service cannot do its job). Kafka down -> 200 with
status "degraded": orders are still taken and the outbox holds the events until it is back.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from shared.messaging.kafka import broker_reachable
from shared.redis import get_redis

_kafka_cache: dict[str, float | bool] = {"at": 0.0, "ok": False}


def _kafka_ok() -> bool:
    # Asking the broker costs a round trip or a timeout; a few seconds of staleness is fine.
    if time.monotonic() - float(_kafka_cache["at"]) > 5:
        _kafka_cache["ok"] = broker_reachable(timeout=1.0)
        _kafka_cache["at"] = time.monotonic()
    return bool(_kafka_cache["ok"])


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
    hard_down = any(v == "down" for k, v in checks.items() if k != "kafka")
    status = "down" if hard_down else ("degraded" if checks["kafka"] == "down" else "ok")
    return JsonResponse(
        {"status": status, "service": settings.SERVICE_NAME, "checks": checks}, status=503 if hard_down else 200
    )

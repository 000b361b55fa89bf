"""Celery jobs every service runs: the outbox relay."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from shared.messaging.publisher import publish_all_pending
from shared.redis import get_redis

logger = logging.getLogger(__name__)


@shared_task(name="shared.messaging.tasks.publish_outbox", ignore_result=True)
def publish_outbox() -> int:
    # One relay at a time per service: a second one would only wait on SKIP LOCKED rows.
    lock = get_redis().lock(f"outbox:relay-lock:{settings.SERVICE_NAME}", timeout=60, blocking=False)
    if not lock.acquire(blocking=False):
        return 0
    try:
        return publish_all_pending()
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - lock expired: another relay may run, rows stay safe
            logger.info("outbox relay lock had expired")

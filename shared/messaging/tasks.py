"""Celery jobs every service runs: the outbox relay (and its check for a broker that lost its data)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from shared.messaging.publisher import publish_all_pending
from shared.messaging.recovery import check_broker_if_due
from shared.redis import get_redis

logger = logging.getLogger(__name__)


@shared_task(name="shared.messaging.tasks.publish_outbox", ignore_result=True)
def publish_outbox() -> int:
    # One relay at a time per service: a second one would only wait on SKIP LOCKED rows.
    lock = get_redis().lock(f"outbox:relay-lock:{settings.SERVICE_NAME}", timeout=60, blocking=False)
    if not lock.acquire(blocking=False):
        return 0
    try:
        try:
            check_broker_if_due()
        except Exception:  # noqa: BLE001 - the check must never stop publishing; it runs again soon
            logger.exception("broker epoch check failed; publishing anyway, the next check tries again")
        return publish_all_pending()
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - lock expired: another relay may run, rows stay safe
            logger.info("outbox relay lock had expired")

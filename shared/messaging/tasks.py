"""Celery jobs every service runs: the outbox relay (and its check for a broker that lost its data)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from shared.messaging.publisher import publish_all_pending
from shared.messaging.recovery import check_broker_if_due
from shared.redis import get_redis

logger = logging.getLogger(__name__)

_LOCK_KEY = "outbox:relay-lock:{service}"
#: set by a relay run that found another running: that one makes one more pass
_AGAIN_KEY = "outbox:relay-again:{service}"


@shared_task(name="shared.messaging.tasks.publish_outbox", ignore_result=True)
def publish_outbox() -> int:
    client = get_redis()
    # One relay at a time per service: a second one would only wait on SKIP LOCKED rows.
    lock = client.lock(_LOCK_KEY.format(service=settings.SERVICE_NAME), timeout=60, blocking=False)
    again = _AGAIN_KEY.format(service=settings.SERVICE_NAME)
    if not lock.acquire(blocking=False):
        # The running relay may have read the outbox before the rows this run was woken for
        # were committed: it makes one more pass before it lets go of the lock.
        client.set(again, 1, ex=60)
        return 0
    try:
        try:
            check_broker_if_due()
        except Exception:  # noqa: BLE001 - the check must never stop publishing; it runs again soon
            logger.exception("broker epoch check failed; publishing anyway, the next check tries again")
        sent = publish_all_pending()
        while client.getdel(again):
            sent += publish_all_pending()
        return sent
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - lock expired: another relay may run, rows stay safe
            logger.info("outbox relay lock had expired")

"""Celery beat jobs of the member service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from members.models import DeviceSession, EmailVerification

logger = logging.getLogger(__name__)

#: Ended sessions (and their refresh tokens) are kept this long for ops to look at.
ENDED_SESSION_RETENTION = timedelta(days=30)


@shared_task
def purge_expired_records() -> dict[str, int]:
    """Drop codes a day past their expiry, and sessions long ended or expired."""
    now = timezone.now()
    codes, _ = EmailVerification.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    old = now - ENDED_SESSION_RETENTION
    sessions, _ = DeviceSession.objects.filter(revoked_at__lt=old).delete()
    expired, _ = DeviceSession.objects.filter(refresh_expires_at__lt=old).delete()
    logger.info("purged %s codes and %s sessions", codes, sessions + expired)
    return {"codes": codes, "sessions": sessions + expired}

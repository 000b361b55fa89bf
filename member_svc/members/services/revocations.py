"""Restoring revocations: for a Redis that lost them, written back from PostgreSQL (the gateway asks)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from members.models import DeviceSession, Member
from shared import tokens

logger = logging.getLogger(__name__)


def restore_revocations() -> dict[str, int]:
    """Write back to Redis every revocation an access token still alive could need.

    For a Redis that lost them (the gateway notices and asks): sessions ended, and members
    logged out everywhere, within the access-token lifetime (older tokens have expired).
    """
    now = timezone.now()
    keep = settings.JWT_ACCESS_TTL_SECONDS + 60  # as long as the keys a logout writes live
    since = now - timedelta(seconds=keep)

    def left(at) -> int:
        return keep - int((now - at).total_seconds())

    sessions = [
        (sid, left(at))
        for sid, at in DeviceSession.objects.filter(revoked_at__gte=since).values_list("sid", "revoked_at")
    ]
    members = [
        (member_id, int(at.timestamp() * 1000), left(at))
        for member_id, at in Member.objects.filter(tokens_not_before__gte=since).values_list("pk", "tokens_not_before")
    ]
    tokens.restore_revocations(sessions=sessions, members=members)
    logger.warning(
        "revocations restored from the record: %d sessions, %d members logged out everywhere",
        len(sessions),
        len(members),
    )
    return {"sessions": len(sessions), "members": len(members)}

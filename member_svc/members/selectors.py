"""Reads of the member service."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from members.models import DeviceSession, Member
from shared.errors import NotFound


def member_profile(*, member_id: int) -> Member:
    member = Member.objects.filter(pk=member_id, is_active=True).first()
    if member is None:
        raise NotFound("No such member.")
    return member


def active_sessions(*, member_id: int) -> QuerySet[DeviceSession]:
    return DeviceSession.objects.filter(
        member_id=member_id, revoked_at__isnull=True, refresh_expires_at__gt=timezone.now()
    )

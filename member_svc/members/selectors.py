"""Reads of the member service."""

from __future__ import annotations

from members.models import Member
from shared.errors import NotFound


def member_profile(*, member_id: int) -> Member:
    member = Member.objects.filter(pk=member_id, is_active=True).first()
    if member is None:
        raise NotFound("No such member.")
    return member

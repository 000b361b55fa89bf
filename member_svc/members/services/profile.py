"""The member's profile (``/member/mypage``): name, phone and address; the active member behind it."""

from __future__ import annotations

from django.db import transaction

from members.models import Member
from shared.errors import NotFound


def active_member(member_id: int) -> Member:
    member = Member.objects.filter(pk=member_id, is_active=True).first()
    if member is None:
        raise NotFound("No such member.")
    return member


def update_profile(*, member_id: int, name: str, phone: str = "", address: str = "") -> Member:
    with transaction.atomic():
        member = active_member(member_id)
        member.name, member.phone, member.address = name, phone, address
        member.save(update_fields=["name", "phone", "address"])
    return member

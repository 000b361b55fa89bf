"""Passwords: the rules a new one must meet (joining too), and changing it.

Changing the password ends every other session of the member, each revoked as in ``sessions``.
"""

from __future__ import annotations

import logging

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from members import ratelimit
from members.models import DeviceSession, Member
from members.services.profile import active_member
from members.services.sessions import end_session_locked
from shared.errors import InvalidCredentials, ValidationFailed

logger = logging.getLogger(__name__)


def password_errors(password: str, member: Member) -> list[str]:
    try:
        validate_password(password, user=member)
    except DjangoValidationError as exc:
        return list(exc.messages)
    return []


def change_password(*, member_id: int, session_id: str, current_password: str, new_password: str) -> int:
    """Change the password and end every other session of the member. Returns how many were ended."""
    subject = str(member_id)
    ratelimit.check("password_member", subject, message="Too many wrong passwords; try again later.")
    member = active_member(member_id)
    if not member.check_password(current_password):
        ratelimit.record_failure("password_member", subject)
        raise InvalidCredentials("The current password is wrong.")
    errors = password_errors(new_password, member)
    if current_password == new_password:
        errors.append("The new password must differ from the current one.")
    if errors:
        raise ValidationFailed(fields={"new_password": errors})
    with transaction.atomic():
        member.set_password(new_password)
        member.save(update_fields=["password"])
        others = list(
            DeviceSession.objects.select_for_update()
            .filter(member_id=member_id, revoked_at__isnull=True)
            .exclude(sid=session_id)
        )
        for session in others:
            end_session_locked(session, reason="password_changed")
    ratelimit.reset("password_member", subject)
    logger.info("member %s changed the password; %s other sessions ended", member_id, len(others))
    return len(others)

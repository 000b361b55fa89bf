"""Joining: a member is created for an address verified with a code, and announced (``MemberJoined``)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from members.models import EmailVerification, Member
from members.services.email_codes import normalize_email
from members.services.passwords import password_errors
from shared.contracts.member import MemberJoined
from shared.errors import EmailNotVerified, EmailTaken, ValidationFailed
from shared.messaging.events import record_event

logger = logging.getLogger(__name__)


def join(*, email: str, password: str, name: str, phone: str = "", address: str = "") -> Member:
    """Create a member for an address verified with a code (used once), and announce it."""
    email = normalize_email(email)
    now = timezone.now()
    with transaction.atomic():
        verification = (
            EmailVerification.objects.select_for_update()
            .filter(
                email=email,
                verified_at__isnull=False,
                consumed_at__isnull=True,
                verified_at__gte=now - timedelta(seconds=settings.EMAIL_VERIFIED_TTL_SECONDS),
            )
            .order_by("-id")
            .first()
        )
        if verification is None:
            raise EmailNotVerified()
        if Member.objects.filter(email=email).exists():
            raise EmailTaken()
        member = Member(email=email, name=name, phone=phone, address=address, joined_at=now)
        errors = password_errors(password, member)
        if errors:
            raise ValidationFailed(fields={"password": errors})
        member.set_password(password)
        try:
            with transaction.atomic():
                member.save()
        except IntegrityError as exc:  # a twin request joined first
            raise EmailTaken() from exc
        verification.consumed_at = now
        verification.save(update_fields=["consumed_at"])
        record_event(
            MemberJoined(member_id=member.pk, email=member.email, name=member.name, joined_at=member.joined_at)
        )
    logger.info("member %s joined", member.pk)
    return member

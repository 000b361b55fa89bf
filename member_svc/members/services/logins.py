"""Logging in: the password checked, a new device session opened with its first tokens.

Failed logins are limited per IP and address together, and per IP.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from members import ratelimit
from members.models import DeviceSession, Member
from members.services.email_codes import normalize_email
from members.services.sessions import TokenPair, new_refresh_token, tokens_for
from shared.errors import InvalidCredentials

logger = logging.getLogger(__name__)


def login(*, email: str, password: str, device_name: str = "", ip: str = "", user_agent: str = "") -> TokenPair:
    """Check the password and open a new device session. Failures are limited per IP+address and per IP."""
    email = normalize_email(email)
    account = f"{ip}|{email}"
    ratelimit.check("login_ip_email", account, message="Too many failed logins; try again later.")
    ratelimit.check("login_ip", ip, message="Too many failed logins from this address; try again later.")
    member = authenticate(email=email, password=password)
    if member is None:
        ratelimit.record_failure("login_ip_email", account)
        ratelimit.record_failure("login_ip", ip)
        raise InvalidCredentials()
    ratelimit.reset("login_ip_email", account)
    now = timezone.now()
    with transaction.atomic():
        session = DeviceSession.objects.create(
            sid=uuid.uuid4().hex,
            member=member,
            device_name=device_name[:100],
            user_agent=user_agent[:255],
            ip=ip or None,
            created_at=now,
            last_used_at=now,
            refresh_expires_at=now + timedelta(seconds=settings.JWT_REFRESH_TTL_SECONDS),
        )
        refresh = new_refresh_token(session, 0)
        Member.objects.filter(pk=member.pk).update(last_login=now)
    logger.info("member %s logged in, session %s", member.pk, session.sid)
    return tokens_for(session, refresh)

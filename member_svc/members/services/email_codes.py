"""E-mail codes: a 6-digit code mailed to an address before it may join, and its checks.

A newer code replaces any older one; only its keyed hash is kept. Sending is refused within
the resend cooldown and past the per-address and per-IP limits; wrong codes use up tries.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from members import ratelimit
from members.models import EmailVerification, MemberManager
from shared.errors import RateLimited, UpstreamUnavailable, ValidationFailed
from shared.redis import get_redis

logger = logging.getLogger(__name__)


def normalize_email(email: str) -> str:
    return MemberManager.normalize_email(email)


def _code_hash(email: str, code: str) -> str:
    # Keyed: a million possible codes are no secret without the key.
    return hmac.new(settings.SECRET_KEY.encode(), f"{email}:{code}".encode(), hashlib.sha256).hexdigest()


def _cooldown_key(email: str) -> str:
    return f"member:email:cooldown:{hashlib.sha256(email.encode()).hexdigest()[:32]}"


def send_email_code(*, email: str, ip: str) -> int:
    """Mail a fresh 6-digit code to ``email``; return its lifetime in seconds.

    A newer code replaces any older one. Refused (429) within the resend cooldown and past
    the per-address and per-IP limits.
    """
    email = normalize_email(email)
    redis = get_redis()
    cooldown = settings.EMAIL_SEND_COOLDOWN_SECONDS
    cooldown_key = _cooldown_key(email)
    if cooldown > 0 and not redis.set(cooldown_key, "1", nx=True, ex=cooldown):
        wait = redis.ttl(cooldown_key)
        raise RateLimited(
            "A code was sent to this address a moment ago; wait before asking again.",
            retry_after=wait if wait and wait > 0 else cooldown,
        )
    try:
        ratelimit.hit("email_send_address", email, message="Too many codes for this address; try again later.")
        ratelimit.hit("email_send_ip", ip, message="Too many codes asked from this address; try again later.")
        code = f"{secrets.randbelow(1_000_000):06d}"
        ttl = settings.EMAIL_CODE_TTL_SECONDS
        with transaction.atomic():
            EmailVerification.objects.create(
                email=email,
                code_hash=_code_hash(email, code),
                expires_at=timezone.now() + timedelta(seconds=ttl),
                ip=ip or None,
            )
            _mail_code(email, code, ttl)
    except BaseException:
        redis.delete(cooldown_key)  # nothing was sent: the member may ask again at once
        raise
    logger.info("verification code mailed (expires in %ss)", ttl)
    return ttl


def _mail_code(email: str, code: str, ttl: int) -> None:
    body = (
        "Welcome to Drop Shop.\n\n"
        f"Your code: {code}\n\n"
        f"It works for {ttl // 60} minutes. If you did not ask for it, ignore this e-mail.\n"
    )
    try:
        send_mail("Your Drop Shop verification code", body, None, [email])
    except OSError as exc:  # SMTP down or refusing: the code row rolls back with this
        logger.warning("could not mail a verification code: %s", exc)
        raise UpstreamUnavailable("The mail server is unavailable; try again shortly.") from exc


def verify_email_code(*, email: str, code: str) -> None:
    """Mark the newest code of ``email`` verified. Wrong codes use up tries; then the code is dead."""
    email = normalize_email(email)
    now = timezone.now()
    max_tries = settings.EMAIL_CODE_MAX_TRIES
    with transaction.atomic():
        row = (
            EmailVerification.objects.select_for_update()
            .filter(email=email, consumed_at__isnull=True)
            .order_by("-id")
            .first()
        )
        if row is None:
            outcome = "missing"
        elif row.expires_at <= now and row.verified_at is None:
            outcome = "expired"
        elif row.tries >= max_tries:
            outcome = "dead"
        elif hmac.compare_digest(row.code_hash, _code_hash(email, code)):
            if row.verified_at is None:
                row.verified_at = now
                row.save(update_fields=["verified_at"])
            return
        else:
            row.tries += 1
            row.save(update_fields=["tries"])  # committed: the failed try counts
            outcome = "wrong"
    if outcome == "missing":
        raise ValidationFailed(fields={"code": ["No code was sent to this address; ask for one first."]})
    if outcome == "expired":
        raise ValidationFailed(fields={"code": ["This code has expired; ask for a new one."]})
    if outcome == "dead":
        wait = get_redis().ttl(_cooldown_key(email))
        raise RateLimited("Too many wrong codes; ask for a new code.", retry_after=wait if wait and wait > 0 else 1)
    left = max(0, max_tries - row.tries)
    raise ValidationFailed(
        fields={
            "code": [
                f"The code is wrong; {left} tries left."
                if left
                else "The code is wrong and no tries are left; ask for a new code."
            ]
        }
    )

"""Every write of the member service: one function per use case, each atomic.

Revocation is written to Redis inside the transaction that ends a session, before it
commits: if Redis cannot be written the whole change rolls back (fail closed), so a
session is never "ended" in the database while its access tokens still pass the gateway.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from redis.exceptions import RedisError

from members import ratelimit
from members.models import DeviceSession, EmailVerification, Member, MemberManager, RefreshToken
from shared import tokens
from shared.contracts.member import MemberJoined
from shared.errors import (
    EmailNotVerified,
    EmailTaken,
    InvalidCredentials,
    NotFound,
    RateLimited,
    TokenInvalid,
    TokenReused,
    UpstreamUnavailable,
    ValidationFailed,
)
from shared.messaging.events import record_event
from shared.redis import get_redis

logger = logging.getLogger(__name__)

REFRESH_TOKEN_MAX_LENGTH = 200


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    member_id: int
    token_type: str = "Bearer"


def normalize_email(email: str) -> str:
    return MemberManager.normalize_email(email)


# ----------------------------------------------------------------------------- e-mail codes


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


# ----------------------------------------------------------------------------- joining


def _password_errors(password: str, member: Member) -> list[str]:
    try:
        validate_password(password, user=member)
    except DjangoValidationError as exc:
        return list(exc.messages)
    return []


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
        errors = _password_errors(password, member)
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


# ----------------------------------------------------------------------------- sessions


def _refresh_hash(token: str) -> str:
    # Refresh tokens are 256 random bits: a fast hash is enough, nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def _new_refresh_token(session: DeviceSession, generation: int, *, token: str | None = None) -> str:
    token = token or secrets.token_urlsafe(32)
    RefreshToken.objects.create(session=session, token_hash=_refresh_hash(token), generation=generation)
    return token


def _successor_of(refresh_token: str) -> str:
    """The token a refresh token is rotated into: derived with the server's key, not drawn.

    So a token presented again within the grace window gets the same successor without the
    server keeping any token in the clear. Knowing a token is not enough to derive its
    successor; that takes SECRET_KEY, which would forge sessions anyway.
    """
    digest = salted_hmac("members.refresh-successor", refresh_token, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _tokens_for(session: DeviceSession, refresh_token: str) -> TokenPair:
    access, ttl = tokens.issue_access_token(member_id=session.member_id, session_id=session.sid)
    return TokenPair(access_token=access, refresh_token=refresh_token, expires_in=ttl, member_id=session.member_id)


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
        refresh = _new_refresh_token(session, 0)
        Member.objects.filter(pk=member.pk).update(last_login=now)
    logger.info("member %s logged in, session %s", member.pk, session.sid)
    return _tokens_for(session, refresh)


def refresh_session(*, refresh_token: str, ip: str = "", user_agent: str = "") -> TokenPair:
    """Rotate a refresh token. An already rotated one ends its session (it was copied).

    Except within ``REFRESH_REUSE_GRACE_SECONDS`` of its rotation: two tabs (or a retried
    request) refreshing with one token at once all get the same successor, and a fresh
    access token. After the window a rotated token is a copy, and the session ends.
    """
    if not refresh_token or len(refresh_token) > REFRESH_TOKEN_MAX_LENGTH:
        raise TokenInvalid("The refresh token is invalid.")
    token_hash = _refresh_hash(refresh_token)
    found = RefreshToken.objects.filter(token_hash=token_hash).values_list("session_id", flat=True).first()
    if found is None:
        raise TokenInvalid("The refresh token is invalid.")
    now = timezone.now()
    with transaction.atomic():
        session = DeviceSession.objects.select_for_update().select_related("member").get(pk=found)
        row = RefreshToken.objects.get(token_hash=token_hash)  # read again under the session's lock
        if session.revoked_at is not None or not session.member.is_active:
            raise TokenInvalid("This session has ended; log in again.")
        if row.rotated_at is not None:
            successor = _successor_within_grace(session, row, refresh_token, now=now)
            if successor is not None:
                logger.info("session %s refreshed again within the grace window", session.sid)
                return _tokens_for(session, successor)
            _end_session(session, reason="token_reused", now=now)
            reused = True
        elif session.refresh_expires_at <= now:
            raise TokenInvalid("The refresh token has expired; log in again.")
        else:
            reused = False
            row.rotated_at = now
            row.save(update_fields=["rotated_at"])
            session.rotations += 1
            session.last_used_at = now
            session.refresh_expires_at = now + timedelta(seconds=settings.JWT_REFRESH_TTL_SECONDS)
            if ip:
                session.ip = ip
            if user_agent:
                session.user_agent = user_agent[:255]
            session.save(update_fields=["rotations", "last_used_at", "refresh_expires_at", "ip", "user_agent"])
            new_refresh = _new_refresh_token(session, row.generation + 1, token=_successor_of(refresh_token))
    if reused:
        logger.warning("refresh token reuse on session %s of member %s: session ended", session.sid, session.member_id)
        raise TokenReused()
    return _tokens_for(session, new_refresh)


def _successor_within_grace(session: DeviceSession, row: RefreshToken, refresh_token: str, *, now) -> str | None:
    """The successor of a rotated token if it was rotated within the grace window, else None."""
    if now - row.rotated_at > timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS):
        return None
    successor = _successor_of(refresh_token)
    issued = RefreshToken.objects.filter(
        session=session, generation=row.generation + 1, token_hash=_refresh_hash(successor)
    ).exists()
    return successor if issued else None  # rotated before successors were derived: treat as reuse


def _end_session(session: DeviceSession, *, reason: str, now=None) -> None:
    session.revoked_at = now or timezone.now()
    session.revoked_reason = reason
    session.save(update_fields=["revoked_at", "revoked_reason"])
    tokens.revoke_session(session.sid)
    _again_after_commit(tokens.revoke_session, session.sid)


def _again_after_commit(revoke, *args) -> None:
    """Write a revocation once more after the commit.

    Redis wiped between the write inside the transaction and its commit, while the record
    was being restored (which cannot see the uncommitted end): the second write closes that.
    """

    def run() -> None:
        try:
            revoke(*args)
        except RedisError as exc:  # written once already, before the commit
            logger.warning("revocation not written again after commit (%s)", exc)

    transaction.on_commit(run)


def logout(*, member_id: int, session_id: str) -> None:
    """End this device's session: its access tokens stop at once, its refresh token too."""
    with transaction.atomic():
        session = (
            DeviceSession.objects.select_for_update()
            .filter(sid=session_id, member_id=member_id, revoked_at__isnull=True)
            .first()
        )
        if session is not None:
            _end_session(session, reason="logout")
        else:
            tokens.revoke_session(session_id)
    logger.info("member %s logged out of session %s", member_id, session_id)


def end_all_sessions(*, member_id: int, reason: str = "logout_all") -> int:
    """End every session of the member (logout everywhere; the admin's action). Returns how many."""
    now = timezone.now()
    with transaction.atomic():
        ended = DeviceSession.objects.filter(member_id=member_id, revoked_at__isnull=True).update(
            revoked_at=now, revoked_reason=reason
        )
        cut = time.time()  # tokens issued up to this millisecond die; the record keeps the same cut
        Member.objects.filter(pk=member_id).update(tokens_not_before=dt.datetime.fromtimestamp(cut, dt.UTC))
        tokens.revoke_all_sessions(member_id, at=cut)
        _again_after_commit(functools.partial(tokens.revoke_all_sessions, at=cut), member_id)
    logger.info("member %s: %s sessions ended (%s)", member_id, ended, reason)
    return ended


def end_session(*, session_id: str, reason: str = "ended_by_staff") -> bool:
    """End one session by its sid (the admin's action). False if it had ended already."""
    with transaction.atomic():
        session = DeviceSession.objects.select_for_update().filter(sid=session_id, revoked_at__isnull=True).first()
        if session is None:
            return False
        _end_session(session, reason=reason)
    return True


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


# ----------------------------------------------------------------------------- profile and password


def _member(member_id: int) -> Member:
    member = Member.objects.filter(pk=member_id, is_active=True).first()
    if member is None:
        raise NotFound("No such member.")
    return member


def update_profile(*, member_id: int, name: str, phone: str = "", address: str = "") -> Member:
    with transaction.atomic():
        member = _member(member_id)
        member.name, member.phone, member.address = name, phone, address
        member.save(update_fields=["name", "phone", "address"])
    return member


def change_password(*, member_id: int, session_id: str, current_password: str, new_password: str) -> int:
    """Change the password and end every other session of the member. Returns how many were ended."""
    subject = str(member_id)
    ratelimit.check("password_member", subject, message="Too many wrong passwords; try again later.")
    member = _member(member_id)
    if not member.check_password(current_password):
        ratelimit.record_failure("password_member", subject)
        raise InvalidCredentials("The current password is wrong.")
    errors = _password_errors(new_password, member)
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
            _end_session(session, reason="password_changed")
    ratelimit.reset("password_member", subject)
    logger.info("member %s changed the password; %s other sessions ended", member_id, len(others))
    return len(others)

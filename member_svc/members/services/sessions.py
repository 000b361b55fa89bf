"""Device sessions: refresh tokens and their rotation, logging out, ending sessions.

Revocation is written to Redis inside the transaction that ends a session, before it
commits: if Redis cannot be written the whole change rolls back (fail closed), so a
session is never "ended" in the database while its access tokens still pass the gateway.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from redis.exceptions import RedisError

from members.models import DeviceSession, Member, RefreshToken
from shared import tokens
from shared.errors import TokenInvalid, TokenReused

logger = logging.getLogger(__name__)

REFRESH_TOKEN_MAX_LENGTH = 200


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    member_id: int
    token_type: str = "Bearer"


def _refresh_hash(token: str) -> str:
    # Refresh tokens are 256 random bits: a fast hash is enough, nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token(session: DeviceSession, generation: int, *, token: str | None = None) -> str:
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


def tokens_for(session: DeviceSession, refresh_token: str) -> TokenPair:
    access, ttl = tokens.issue_access_token(member_id=session.member_id, session_id=session.sid)
    return TokenPair(access_token=access, refresh_token=refresh_token, expires_in=ttl, member_id=session.member_id)


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
                return tokens_for(session, successor)
            end_session_locked(session, reason="token_reused", now=now)
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
            new_refresh = new_refresh_token(session, row.generation + 1, token=_successor_of(refresh_token))
    if reused:
        logger.warning("refresh token reuse on session %s of member %s: session ended", session.sid, session.member_id)
        raise TokenReused()
    return tokens_for(session, new_refresh)


def _successor_within_grace(session: DeviceSession, row: RefreshToken, refresh_token: str, *, now) -> str | None:
    """The successor of a rotated token if it was rotated within the grace window, else None."""
    if now - row.rotated_at > timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS):
        return None
    successor = _successor_of(refresh_token)
    issued = RefreshToken.objects.filter(
        session=session, generation=row.generation + 1, token_hash=_refresh_hash(successor)
    ).exists()
    return successor if issued else None  # rotated before successors were derived: treat as reuse


def end_session_locked(session: DeviceSession, *, reason: str, now=None) -> None:
    """End a session the caller holds locked, and write its revocation (again after the commit)."""
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
            end_session_locked(session, reason="logout")
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
        end_session_locked(session, reason=reason)
    return True

"""Access tokens: how the member service signs them (simplejwt) and how the gateway checks them (PyJWT).

An access token is a short-lived HS256 JWT with ``sub`` (member id), ``sid`` (the
device session it belongs to), ``iat``, ``exp``, ``jti`` and ``type="access"``. Logout
must take effect at once, also for access tokens already issued, so revocation lives in
Redis where the gateway reads it with one round trip:

- ``auth:sid:<sid>:revoked``      set when one session (device) ends; TTL = access TTL.
- ``auth:member:<id>:not_before`` unix ms; tokens issued up to it are dead (logout all).
- ``auth:revocations:complete``   present while Redis holds every revocation.

PostgreSQL (the member service) is the record of sessions; these keys are a cache of it.
A Redis that restarted empty or was wiped has forgotten logouts, and "no revocation key"
would then read as "still logged in". The marker goes with the rest of the data, so its
absence is noticed in the same ``MGET`` (:class:`RevocationsLost`): the gateway then has
the member service restore the revocations from PostgreSQL (:func:`restore_revocations`,
which writes the marker last, in one transaction) and refuses tokens until it has.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import jwt
from django.conf import settings

from shared.errors import TokenInvalid
from shared.redis import get_redis

ALGORITHM = "HS256"
_signers: dict[str, Any] = {}


def _signer():
    """simplejwt's token backend (PyJWT underneath) with the shop's key, for the member service.

    Imported here, not at the top: simplejwt's backend brings Django's auth models, which the
    gateway (it only checks tokens, with PyJWT below) does not install.
    """
    from rest_framework_simplejwt.backends import TokenBackend  # noqa: PLC0415

    key = settings.JWT_SIGNING_KEY
    signer = _signers.get(key)
    if signer is None:
        signer = _signers[key] = TokenBackend(ALGORITHM, signing_key=key)
    return signer


def _sid_key(sid: str) -> str:
    return f"auth:sid:{sid}:revoked"


def _not_before_key(member_id: int | str) -> str:
    return f"auth:member:{member_id}:not_before"


COMPLETE_KEY = "auth:revocations:complete"


class RevocationsLost(Exception):
    """Redis lost the revocations (the marker is gone): no token can be trusted until restored."""


def issue_access_token(*, member_id: int, session_id: str, now: float | None = None) -> tuple[str, int]:
    """Return (token, expires_in seconds)."""
    now = time.time() if now is None else now
    ttl = settings.JWT_ACCESS_TTL_SECONDS
    claims = {
        "sub": str(member_id),
        "sid": session_id,
        "iat": int(now),
        "exp": int(now) + ttl,
        "ims": int(now * 1000),  # issue time in ms: logout-all cuts at the millisecond
        "jti": uuid.uuid4().hex,
        "type": "access",
    }
    return _signer().encode(claims), ttl


#: (signing key, token) -> claims of tokens whose signature and shape were checked already.
#: The gateway sees the same token on every click of a member; checking the HMAC once per
#: token and only the expiry afterwards saves a tenth of its CPU per request.
_checked: dict[tuple[str, str], dict[str, Any]] = {}
_CHECKED_MAX = 50_000


def decode_access_token(token: str) -> dict[str, Any]:
    """Check signature, expiry and shape; raise TokenInvalid otherwise. No Redis here."""
    key = (settings.JWT_SIGNING_KEY, token)
    claims = _checked.get(key)
    if claims is not None:
        if claims["exp"] <= time.time():
            _checked.pop(key, None)
            raise TokenInvalid("The access token has expired.")
        return claims
    claims = _decode(token)
    if len(_checked) >= _CHECKED_MAX:
        _checked.clear()  # crude but bounded; the next requests re-check their tokens once
    _checked[key] = claims
    return claims


def _decode(token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[ALGORITHM],  # a fixed list: "alg": "none" or RS/HS confusion never passes
            options={"require": ["exp", "iat", "sub", "sid"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenInvalid("The access token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalid("The access token is invalid.") from exc
    if claims.get("type") != "access" or not str(claims["sub"]).isdigit():
        raise TokenInvalid("The access token is invalid.")
    return claims


def revocation_keys(claims: dict[str, Any]) -> tuple[str, str, str]:
    """The keys one ``MGET`` reads to know whether a token's session ended (see :func:`revoked_by`)."""
    return _sid_key(claims["sid"]), _not_before_key(claims["sub"]), COMPLETE_KEY


def revoked_by(claims: dict[str, Any], values: list[Any]) -> bool:
    """True when the values of :func:`revocation_keys` say the token's session ended.

    Raises :class:`RevocationsLost` when Redis no longer holds the revocations. Apart from
    :func:`is_revoked` so a caller can read the keys in a round trip it makes anyway.
    """
    revoked, not_before, complete = values
    if complete is None:
        raise RevocationsLost()
    if revoked:
        return True
    issued_ms = int(claims.get("ims", int(claims["iat"]) * 1000))
    return bool(not_before) and issued_ms <= int(not_before)


def is_revoked(claims: dict[str, Any]) -> bool:
    """True when the token's session was ended or every session of the member was.

    Raises :class:`RevocationsLost` when Redis no longer holds the revocations.
    """
    return revoked_by(claims, get_redis().mget(revocation_keys(claims)))


def verify_access_token(token: str) -> dict[str, Any]:
    claims = decode_access_token(token)
    if is_revoked(claims):
        raise TokenInvalid("This session has ended; log in again.")
    return claims


def revoke_session(session_id: str) -> None:
    # Kept a little past the access TTL: by then every token of the session has expired.
    get_redis().set(_sid_key(session_id), "1", ex=settings.JWT_ACCESS_TTL_SECONDS + 60)


def revoke_all_sessions(member_id: int, *, at: float | None = None) -> None:
    """Every access token of the member issued up to now (to the millisecond) stops working."""
    at = time.time() if at is None else at
    get_redis().set(_not_before_key(member_id), int(at * 1000), ex=settings.JWT_ACCESS_TTL_SECONDS + 60)


def revocations_complete() -> bool:
    return bool(get_redis().exists(COMPLETE_KEY))


def restore_revocations(*, sessions: Iterable[tuple[str, int]], members: Iterable[tuple[int, int, int]]) -> None:
    """Write the revocations the record holds, then the marker, in one Redis transaction.

    ``sessions``: (sid, seconds its key must live); ``members``: (member id, not-before in
    unix ms, seconds). A wipe during the write takes the marker with it: never half restored.
    A key already there was written by a logout since the wipe, so it is at least as new as
    the record read for this restore: it is kept (NX), never set back to an older cut.
    """
    pipe = get_redis().pipeline(transaction=True)
    for sid, ttl in sessions:
        pipe.set(_sid_key(sid), "1", ex=max(1, int(ttl)), nx=True)
    for member_id, not_before_ms, ttl in members:
        pipe.set(_not_before_key(member_id), int(not_before_ms), ex=max(1, int(ttl)), nx=True)
    pipe.set(COMPLETE_KEY, int(time.time() * 1000))  # when: for whoever looks
    pipe.execute()

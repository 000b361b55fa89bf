"""The gateway's check of an access token, and what it does when Redis lost the revocations.

Redis only caches the member service's record of ended sessions. When the record's marker
is missing from Redis (wiped, or restarted empty), no token is trusted: the member service
writes the revocations back from PostgreSQL first, and if it cannot, the answer is 503.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from gateway import limits
from shared import tokens, upstream
from shared.errors import ShopError, TokenInvalid, UpstreamUnavailable
from shared.redis import get_redis

logger = logging.getLogger(__name__)

_UNCHECKABLE = "Sign-in cannot be checked right now; try again shortly."

#: One restore at a time per process: the requests that noticed the loss meanwhile wait for it.
_restoring = threading.Lock()


def verify(token: str, *, counted: limits.Limit | None = None) -> dict[str, Any]:
    """The token's claims; TokenInvalid if it is bad or its session ended; 503 if that is unknowable.

    With ``counted``, the attempt also counts against that per-member limit, in the same
    Redis round trip as the revocation check; limits.OverLimit (after the token checks) when over.
    """
    claims = tokens.decode_access_token(token)
    if counted is None:
        answers = [get_redis().mget(tokens.revocation_keys(claims))]
    else:  # one round trip still: the count rides with the revocation check
        pipe = get_redis().pipeline(transaction=False)
        pipe.mget(tokens.revocation_keys(claims))
        limits.add_count(pipe, counted, str(claims["sub"]))
        answers = pipe.execute()
    try:
        revoked = tokens.revoked_by(claims, answers[0])
    except tokens.RevocationsLost:
        _restore()
        try:
            revoked = tokens.is_revoked(claims)
        except tokens.RevocationsLost as exc:
            logger.error("token revocations still missing from Redis after a restore; refusing tokens")
            raise UpstreamUnavailable(_UNCHECKABLE) from exc
    if revoked:
        raise TokenInvalid("This session has ended; log in again.")
    if counted is not None and (refused := limits.refusal(counted, answers[1:])) is not None:
        raise refused
    return claims


def _restore() -> None:
    with _restoring:
        if tokens.revocations_complete():
            return  # another request of this process restored them while this one waited
        logger.warning("token revocations lost from Redis; the member service restores them")
        try:
            upstream.call_ok("member", "POST", "/internal/sessions/revocations/restore", idempotent=True)
        except ShopError as exc:
            logger.error("token revocations not restored (%s); refusing tokens", exc.message)
            raise UpstreamUnavailable(_UNCHECKABLE) from exc

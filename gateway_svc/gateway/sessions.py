"""The gateway's check of an access token, and what it does when Redis lost the revocations.

Redis only caches the member service's record of ended sessions. When the record's marker
is missing from Redis (wiped, or restarted empty), no token is trusted: the member service
writes the revocations back from PostgreSQL first, and if it cannot, the answer is 503.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared import tokens, upstream
from shared.errors import ShopError, UpstreamUnavailable

logger = logging.getLogger(__name__)

_UNCHECKABLE = "Sign-in cannot be checked right now; try again shortly."

#: One restore at a time per process: the requests that noticed the loss meanwhile wait for it.
_restoring = threading.Lock()


def verify(token: str) -> dict[str, Any]:
    """The token's claims; TokenInvalid if it is bad or its session ended; 503 if that is unknowable."""
    try:
        return tokens.verify_access_token(token)
    except tokens.RevocationsLost:
        _restore()
    try:
        return tokens.verify_access_token(token)
    except tokens.RevocationsLost as exc:
        logger.error("token revocations still missing from Redis after a restore; refusing tokens")
        raise UpstreamUnavailable(_UNCHECKABLE) from exc


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

"""Order placements the web server refused before Django: their member is held as at a gate.

gunicorn's main thread answers ``503 overloaded`` to a request that would wait too long
for a thread (shared/gunicorn_worker.py) without reading its token. Without a hold, a
client that ignores ``Retry-After`` would click again at once and win more turns than one
that waits: so each such refusal's request head comes here, off the main thread, and an
order placement's member (from a token whose signature checks, nothing else) is held to
that ``Retry-After`` like a member the gate refused (gateway/limits.py).
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from gateway import limits, routes
from shared import tokens
from shared.errors import ShopError

logger = logging.getLogger(__name__)


def hold_refused(data: bytes, retry_after: int, refused_at: float | None = None) -> None:
    """Hold the member of the refused order placement in ``data`` (a request's first bytes) until
    ``retry_after`` seconds after the refusal (``refused_at``, time.monotonic(); default now):
    this runs a moment after the answer went out, and a polite member's next click must not
    meet a hold that outlasts what they were told."""
    left = retry_after - (time.monotonic() - refused_at if refused_at is not None else 0.0)
    if left <= 0:
        return
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        return
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, _, rest = request_line.partition(" ")
    path = rest.partition(" ")[0].partition("?")[0]
    route, _ = routes.match(method, path)
    if route is None or route.limit != limits.ORDER_MEMBER:
        return
    counted = limits.limit(route.limit)
    if counted is None:
        return
    token = next(
        (
            value.strip()
            for name, _, value in (line.partition(":") for line in lines)
            if name.lower() == "authorization"
        ),
        "",
    )
    scheme, _, token = token.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return
    try:
        member = str(tokens.decode_access_token(token.strip())["sub"])
    except ShopError:
        return
    try:
        limits.hold(counted, member, left)
    except RedisError as exc:
        logger.error("rate limit store unreachable, member %s not held: %s", member, exc)

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


def hold_refused(refusals: list[tuple[bytes, int, float]]) -> None:
    """Hold the members of the refused order placements among ``refusals`` (each a request's
    first bytes, its Retry-After and time.monotonic() of the refusal), each until Retry-After
    seconds after its refusal; a member refused several times, until the latest end. This runs
    a moment after the answers went out, and a polite member's next click must not meet a hold
    that outlasts what they were told. One Redis round trip for the whole batch."""
    counted = limits.limit(limits.ORDER_MEMBER)
    if counted is None:
        return
    ends: dict[str, float] = {}
    for data, retry_after, refused_at in refusals:
        member = _order_placer(data)
        if member is not None:
            ends[member] = max(ends.get(member, float("-inf")), refused_at + retry_after)
    now = time.monotonic()
    holds = {member: end - now for member, end in ends.items() if end > now}
    if not holds:
        return
    try:
        limits.hold_many(counted, holds)
    except RedisError as exc:
        logger.error("rate limit store unreachable, %d members not held: %s", len(holds), exc)


def _order_placer(data: bytes) -> str | None:
    """The member of the order placement in ``data``, from a token whose signature checks; else None."""
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, _, rest = request_line.partition(" ")
    path = rest.partition(" ")[0].partition("?")[0]
    route, _ = routes.match(method, path)
    if route is None or route.limit != limits.ORDER_MEMBER:
        return None
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
        return None
    try:
        return str(tokens.decode_access_token(token.strip())["sub"])
    except ShopError:
        return None

"""Order placements the web server refused before Django: their member is held as at a gate.

gunicorn's main thread answers ``503 overloaded`` to a request that would wait too long
for a thread (shared/gunicorn_worker.py) without reading its token. Without a hold, a
client that ignores ``Retry-After`` would click again at once and win more turns than one
that waits: so each such refusal's request head comes here, off the main thread, and an
order placement's member (from a token whose signature checks, nothing else) is held to
that ``Retry-After`` like a member the gate refused (gateway/limits.py).

Every hold of an order placement's member is also written down in this process
(:func:`remember_hold`, by the request's ``Authorization`` header): the web server's main
thread answers that client's next placements before the hold ends itself, after
``GATEWAY_HELD_ANSWER_DELAY_SECONDS`` (shared/gunicorn_worker.py).
"""

from __future__ import annotations

import logging
import re
import time

from redis.exceptions import RedisError

from gateway import limits, routes
from shared import gunicorn_worker, tokens
from shared.errors import ShopError

logger = logging.getLogger(__name__)


def remember_hold(authorization: str, until: float) -> None:
    """Note in this process that the client sending ``authorization`` (the header's value, as
    the environ holds it) is held until ``until`` (time.monotonic()); a later end than one
    already noted wins."""
    key = authorization.encode("latin-1")
    if until > gunicorn_worker.held.get(key, float("-inf")):
        gunicorn_worker.held[key] = until


def held_routes() -> tuple[bytes, ...]:
    """The request-line starts of the order placements (a hold applies to them), for the web
    server's main thread: ``POST /orders/add `` and ``POST /orders/add?``; a route given as a
    pattern rather than a path is left to the threads."""
    starts: list[bytes] = []
    for route in routes.all_routes():
        path = route.pattern.pattern
        if route.limit != limits.ORDER_MEMBER or re.escape(path) != path:
            continue
        for method in sorted(route.methods):
            starts += [f"{method} {path} ".encode(), f"{method} {path}?".encode()]
    return tuple(starts)


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
        placer = _order_placer(data)
        if placer is not None:
            member, authorization = placer
            ends[member] = max(ends.get(member, float("-inf")), refused_at + retry_after)
            remember_hold(authorization, refused_at + retry_after)
    now = time.monotonic()
    holds = {member: end - now for member, end in ends.items() if end > now}
    if not holds:
        return
    try:
        limits.hold_many(counted, holds)
    except RedisError as exc:
        logger.error("rate limit store unreachable, %d members not held: %s", len(holds), exc)


def _order_placer(data: bytes) -> tuple[str, str] | None:
    """The member of the order placement in ``data``, from a token whose signature checks, and
    its ``Authorization`` header as sent; else None."""
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, _, rest = request_line.partition(" ")
    path = rest.partition(" ")[0].partition("?")[0]
    route, _ = routes.match(method, path)
    if route is None or route.limit != limits.ORDER_MEMBER:
        return None
    authorization = next(
        (
            value.strip()
            for name, _, value in (line.partition(":") for line in lines)
            if name.lower() == "authorization"
        ),
        "",
    )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return str(tokens.decode_access_token(token.strip())["sub"]), authorization
    except ShopError:
        return None

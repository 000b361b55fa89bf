"""Rate limits counted at the gateway, in Redis, so every gateway process shares the count.

Two limits, both settings (``GATEWAY_RATE_LIMITS[name] = (count, window seconds)``):

- ``order_member``: placing an order (``POST /orders/add``, ``POST /orders/add/Wishlist``)
  per member, a couple of attempts a second. Counted in the same Redis round trip as the
  token's revocation check, before any upstream work. A member the gateway refused, as
  ``overloaded`` or as over this limit, is held to that answer's ``Retry-After``
  (:func:`hold`): for the first attempt over the limit, the whole seconds it is told and
  not what is left of the window, so a client that ignores it is not back at the gate
  sooner than one that waits. Clicking again during a hold is refused here and told what is
  left of it, whole seconds up, without moving it: several clients of one member (tabs,
  devices), each waiting as told, must not hold each other out. So firing from many
  connections buys no more turns at the gate than waiting as asked does. The hold counts
  from the refusal, not from when the answer is likely to arrive: a polite member's next
  click may wait less for a thread than the refused one did, and a longer hold would refuse
  it (docs/performance.md). Not scaled by ``RATE_LIMIT_SCALE``: a drop's limit is not a
  login's, and a load test's buyers are distinct members like real ones.
- ``address``: every public (anonymous) route per client address, scaled by
  ``RATE_LIMIT_SCALE`` like the member service's per-address limits (a load test from
  one machine raises it); 0 turns it off.

A window starts at its first attempt (``INCR``, then ``PEXPIRE ... NX``): ``count``
attempts per window, the next one refused with ``Retry-After`` = what is left of the
window, rounded up to whole seconds. Keys: ``gateway:rl:<name>:<subject>`` (addresses
hashed), expiring with their window.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.client import Pipeline

from shared.errors import RateLimited
from shared.redis import get_redis, script

ORDER_MEMBER = "order_member"
ADDRESS = "address"
_SCALED = frozenset({ADDRESS})


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_ms: int


def limit(name: str) -> Limit | None:
    """The limit's count and window as configured now, or None when it is off."""
    count, window = settings.GATEWAY_RATE_LIMITS[name]
    if name in _SCALED:
        if settings.RATE_LIMIT_SCALE <= 0:
            return None
        count = max(1, int(count * settings.RATE_LIMIT_SCALE))
    if count <= 0 or window <= 0:
        return None
    return Limit(name, int(count), max(1, int(window * 1000)))


def key(lim: Limit, subject: str) -> str:
    if lim.name == ADDRESS:  # addresses stay out of Redis key listings
        subject = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"gateway:rl:{lim.name}:{subject}"


def add_count(pipe: Pipeline, lim: Limit, subject: str) -> None:
    """Queue the three commands that count one attempt (their answers go to :func:`refusal`)."""
    k = key(lim, subject)
    pipe.incr(k)
    pipe.pexpire(k, lim.window_ms, nx=True)
    pipe.pttl(k)


class OverLimit(RateLimited):
    """A refusal over a limit. ``first``: the first attempt over it in this window or hold,
    the one that holds the subject to the whole seconds it is told (see the module's note);
    ``left``: the seconds left of the window or hold, which the later ones leave as they are."""

    def __init__(self, message: str, *, retry_after: int, first: bool, left: float):
        super().__init__(message, retry_after=retry_after)
        self.first, self.left = first, left


def refusal(lim: Limit, answers: list[Any]) -> OverLimit | None:
    """The answers of :func:`add_count`: None within the limit, else the refusal to raise."""
    used, _, ttl_ms = answers
    if used <= lim.count:
        return None
    wait = ttl_ms if ttl_ms and ttl_ms > 0 else lim.window_ms
    return OverLimit(
        "Too many attempts; try again after Retry-After seconds.",
        retry_after=max(1, math.ceil(wait / 1000)),
        first=used == lim.count + 1,
        left=wait / 1000,
    )


def hit(lim: Limit, subject: str, *, then_read: tuple[str, ...] = ()) -> list[bytes | None] | None:
    """Count one attempt in one round trip; raise RateLimited beyond the limit.

    ``then_read``: keys whose values to read (MGET) in the same round trip, returned (None
    when there were none): a repeated answer's condition (gateway/answers.py).
    """
    pipe = get_redis().pipeline(transaction=False)
    add_count(pipe, lim, subject)
    if then_read:
        pipe.mget(then_read)
    results = pipe.execute()
    refused = refusal(lim, results[:3])
    if refused is not None:
        raise refused
    return results[3] if then_read else None


# A hold spends the subject's window until it ends; one that already ends later stays (a
# member refused again meanwhile is never let go sooner than an earlier refusal said). The
# count is set to at least ARGV[1] (the limit's count plus one: spent, and refused once), so
# no attempt during the hold is the first over the limit (OverLimit.first), which holds again.
_HOLD = """
local ttl = redis.call('PTTL', KEYS[1])
local used = tonumber(redis.call('GET', KEYS[1])) or 0
local spent = math.max(used, tonumber(ARGV[1]))
if ttl >= tonumber(ARGV[2]) then
  if used < spent then
    redis.call('SET', KEYS[1], spent, 'KEEPTTL')
  end
  return 0
end
redis.call('SET', KEYS[1], spent, 'PX', ARGV[2])
return 1
"""


def hold(lim: Limit, subject: str, seconds: float) -> None:
    """Spend the subject's window for ``seconds`` (or longer, if already held so): attempts
    before then are refused here. One round trip (EVALSHA; the script is loaded on a miss)."""
    client = get_redis()
    script(client, _HOLD)(keys=[key(lim, subject)], args=[lim.count + 1, max(1, int(seconds * 1000))])


def hold_many(lim: Limit, seconds_by_subject: dict[str, float]) -> None:
    """:func:`hold` for several subjects in one pipeline."""
    client = get_redis()
    hold_one = script(client, _HOLD)
    pipe = client.pipeline(transaction=False)
    for subject, seconds in seconds_by_subject.items():
        hold_one(keys=[key(lim, subject)], args=[lim.count + 1, max(1, int(seconds * 1000))], client=pipe)
    pipe.execute()

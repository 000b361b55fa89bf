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

  One exception, once per hold: a click in its last ``GATEWAY_HOLD_TAIL_SECONDS``
  lengthens it by that much (:func:`lengthen`). A client that never waits has a click on
  its way when the hold ends and is at the gate at once, while one that waited as told
  sends its click then, and it takes a loaded machine's round trip to arrive: in fairness
  drops that head start made the hammerers' win rate the polite buyers' times 0.84-1.38.
  The tail takes the head start away from the member whose client clicked in it. A polite
  member's other tab that clicks in the tail holds the tab that waited as told that much
  longer, once, never for good; a tab told earlier in the hold costs nothing.
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


TOO_MANY = "Too many attempts; try again after Retry-After seconds."


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
        TOO_MANY,
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


# A click ARGV[2] ms ago, when less than ARGV[1] ms of the hold were left, lengthens it by
# ARGV[1] ms, unless a click in its tail already did (KEYS[2], which lives as long as the
# lengthened hold). Returns the ms left after, or -1: not lengthened.
_LENGTHEN = """
local ttl = redis.call('PTTL', KEYS[1])
local tail = tonumber(ARGV[1])
if ttl <= 0 or ttl + tonumber(ARGV[2]) >= tail then
  return -1
end
if not redis.call('SET', KEYS[2], 1, 'NX', 'PX', ttl + tail) then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ttl + tail)
return ttl + tail
"""


def lengthen(lim: Limit, clicked_ago: dict[str, float], tail: float) -> dict[str, float]:
    """For each subject that clicked during a hold (``clicked_ago``: how many seconds ago),
    lengthen the hold by ``tail`` seconds if less than that was left when the click came and
    no click in its tail did so yet (see the module's note). Returns the seconds now left of
    each hold it lengthened. One pipeline."""
    if not clicked_ago or tail <= 0:
        return {}
    client = get_redis()
    lengthen_one = script(client, _LENGTHEN)
    pipe = client.pipeline(transaction=False)
    subjects = list(clicked_ago)
    for subject in subjects:
        k = key(lim, subject)
        ago_ms = max(0, int(clicked_ago[subject] * 1000))
        lengthen_one(keys=[k, f"{k}:tail"], args=[max(1, int(tail * 1000)), ago_ms], client=pipe)
    return {s: left / 1000 for s, left in zip(subjects, pipe.execute(), strict=True) if left >= 0}


def hold_many(lim: Limit, seconds_by_subject: dict[str, float]) -> None:
    """:func:`hold` for several subjects in one pipeline."""
    client = get_redis()
    hold_one = script(client, _HOLD)
    pipe = client.pipeline(transaction=False)
    for subject, seconds in seconds_by_subject.items():
        hold_one(keys=[key(lim, subject)], args=[lim.count + 1, max(1, int(seconds * 1000))], client=pipe)
    pipe.execute()

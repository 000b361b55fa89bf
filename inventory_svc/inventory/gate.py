"""The Redis stock gate: key names, the Lua scripts, and loading a cloth's gate from PostgreSQL.

All keys of one cloth share the hash tag ``{cloth:<id>}``, so each script touches one slot
(and runs unchanged on Redis Cluster). The scripts are in ``lua/`` beside this module, each
saying its keys, arguments and answers at the top.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from inventory.models import ClothRule, ReservationLine, ReservationState, StockItem
from shared.redis import get_redis, script

logger = logging.getLogger(__name__)


class GateAnswer(StrEnum):
    """The first word of every script's answer (the scripts' header comments say which can come)."""

    OK = "OK"
    AGAIN = "AGAIN"  # reserve: the order already has a record (a retry); its state follows
    ALREADY = "ALREADY"  # sell: sold before (a retry)
    REACQUIRED = "REACQUIRED"  # sell: the record was released or missing, the units were free: taken
    NOOP = "NOOP"  # give back, forget: no record in the state asked for
    NOT_LOADED = "NOT_LOADED"  # the cloth's keys are missing: load it from PostgreSQL
    NOT_ON_SALE = "NOT_ON_SALE"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    UNKNOWN_VARIANT = "UNKNOWN_VARIANT"  # PostgreSQL knows the variant, the gate does not: stale
    SOLD_OUT = "SOLD_OUT"  # the variant follows


#: What a sell answers when the order's units are sold in the gate now (or were already).
SOLD_ANSWERS = frozenset({GateAnswer.OK, GateAnswer.ALREADY, GateAnswer.REACQUIRED})


class RecordState(StrEnum):
    """The state of an order's record in the gate (the ``state`` field stored in Redis)."""

    RESERVED = "R"
    SOLD = "S"
    RELEASED = "X"
    RETURNED = "T"


_LUA_DIR = Path(__file__).resolve().parent / "lua"


@functools.cache
def _source(name: str) -> str:
    return (_LUA_DIR / f"{name}.lua").read_text()


def _script(name: str):
    """The registered script (EVALSHA with a fallback to EVAL when Redis lost it)."""
    return script(get_redis(), _source(name))


def _decode(answer: list) -> list[str]:
    """A script's answer as strings: a :class:`GateAnswer` value first, then its details."""
    return [a.decode() if isinstance(a, bytes) else str(a) for a in answer]


@dataclass(frozen=True)
class Keys:
    cloth_id: int

    @property
    def tag(self) -> str:
        return f"{{cloth:{self.cloth_id}}}"

    @property
    def avail(self) -> str:
        return f"{self.tag}:avail"

    @property
    def rule(self) -> str:
        return f"{self.tag}:rule"

    @property
    def bought(self) -> str:
        return f"{self.tag}:bought"

    @property
    def orders(self) -> str:
        return f"{self.tag}:orders"

    @property
    def record_prefix(self) -> str:
        return f"{self.tag}:res:"

    def record(self, order_id: int) -> str:
        return f"{self.record_prefix}{order_id}"

    @property
    def lock(self) -> str:
        return f"{self.tag}:load-lock"


def encode_lines(lines: Iterable[tuple[int, int]]) -> str:
    return ",".join(f"{int(v)}:{int(q)}" for v, q in lines)


def now_ms() -> int:
    return int(time.time() * 1000)


def reserve(*, cloth_id: int, order_id: int, member_id: int, lines: list[tuple[int, int]]) -> list[str]:
    k = Keys(cloth_id)
    return _decode(
        _script("reserve")(
            keys=[k.avail, k.rule, k.bought, k.record(order_id), k.orders],
            args=[order_id, member_id, now_ms(), encode_lines(lines)],
        )
    )


def release(*, cloth_id: int, order_id: int) -> list[str]:
    return _give_back(cloth_id, order_id, RecordState.RESERVED, RecordState.RELEASED)


def give_back_sold(*, cloth_id: int, order_id: int) -> list[str]:
    return _give_back(cloth_id, order_id, RecordState.SOLD, RecordState.RETURNED)


def _give_back(cloth_id: int, order_id: int, from_state: RecordState, to_state: RecordState) -> list[str]:
    k = Keys(cloth_id)
    return _decode(
        _script("give_back")(
            keys=[k.avail, k.bought, k.record(order_id), k.orders],
            args=[order_id, from_state, to_state, settings.INVENTORY_GATE_RECORD_TTL_SECONDS],
        )
    )


def sell(*, cloth_id: int, order_id: int, member_id: int, lines: list[tuple[int, int]]) -> list[str]:
    k = Keys(cloth_id)
    return _decode(
        _script("sell")(
            keys=[k.avail, k.rule, k.bought, k.record(order_id), k.orders],
            args=[order_id, member_id, encode_lines(lines)],
        )
    )


def forget(
    *, cloth_id: int, order_id: int, give_back: Iterable[int] = (), state: RecordState = RecordState.RESERVED
) -> list[str]:
    k = Keys(cloth_id)
    return _decode(
        _script("forget")(
            keys=[k.avail, k.bought, k.record(order_id), k.orders],
            args=[order_id, ",".join(str(int(v)) for v in give_back), state],
        )
    )


def adjust(*, cloth_id: int, variant_id: int, delta: int) -> list[str]:
    k = Keys(cloth_id)
    return _decode(_script("adjust")(keys=[k.avail, k.rule], args=[variant_id, delta]))


def add_variant(*, cloth_id: int, variant_id: int, available: int) -> bool:
    """Put a newly registered variant into a loaded gate, unless a load already put it there."""
    return bool(get_redis().hsetnx(Keys(cloth_id).avail, str(variant_id), available))


def set_rule(*, cloth_id: int, start_ms: int, limit: int) -> None:
    """Update a loaded cloth's rule; an unloaded one gets it from PostgreSQL when loaded."""
    k = Keys(cloth_id)
    client = get_redis()
    if client.exists(k.rule):
        client.hset(k.rule, mapping={"start_ms": start_ms, "limit": limit})


def is_loaded(cloth_id: int) -> bool:
    k = Keys(cloth_id)
    return get_redis().exists(k.avail, k.rule) == 2


def snapshot(cloth_id: int) -> dict:
    """The gate's current state of one cloth (for checks and tests)."""
    k = Keys(cloth_id)
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(k.avail)
    pipe.hgetall(k.rule)
    pipe.hgetall(k.bought)
    pipe.smembers(k.orders)
    avail, rule, bought, orders = pipe.execute()
    return {
        "loaded": bool(avail) and bool(rule),
        "avail": {int(v): int(n) for v, n in avail.items()},
        "rule": {f.decode(): int(n) for f, n in rule.items()},
        "bought": {int(m): int(n) for m, n in bought.items()},
        "orders": {int(o) for o in orders},
    }


@dataclass(frozen=True)
class Record:
    order_id: int
    state: RecordState
    member_id: int
    lines: list[tuple[int, int]]
    at_ms: int | None  # when the gate reserved it; None for a record loaded from PostgreSQL


#: Records read per script call: a drop's thousands are read in slices, so Redis is never
#: held for long by the sweep while buyers wait on it.
_RECORDS_PER_READ = 500


def records(cloth_id: int, *, of: Iterable[int] | None = None) -> list[Record]:
    """The records of the orders the gate holds units for (reserved or sold) in ``cloth_id``.

    With ``of``, only those orders' records (an order the gate does not hold has none).
    One script call per slice of orders answers one line per record: a sweep over a sold-out
    drop's records costs a few replies, not four values per record.
    """
    k = Keys(cloth_id)
    order_ids = sorted(int(o) for o in (get_redis().smembers(k.orders) if of is None else of))
    read = _script("records")
    found = []
    for start in range(0, len(order_ids), _RECORDS_PER_READ):
        lines = read(keys=[k.orders], args=[k.record_prefix, *order_ids[start : start + _RECORDS_PER_READ]])
        for line in lines:
            order_id, state, member, encoded, at = line.decode().split(" ")
            pairs = [tuple(int(x) for x in part.split(":")) for part in encoded.split(",") if part]
            found.append(Record(int(order_id), RecordState(state), int(member), pairs, int(at) if at else None))
    return found


# --- loading from PostgreSQL ---------------------------------------------------------------


def _rule_ms(rule: ClothRule | None) -> tuple[int, int]:
    if rule is None:
        return 0, 0
    start = int(rule.sale_starts_at.timestamp() * 1000) if rule.sale_starts_at else 0
    return start, int(rule.purchase_limit or 0)


@contextmanager
def one_snapshot():
    """A transaction whose reads all see one PostgreSQL snapshot (REPEATABLE READ).

    Inside a caller's transaction, that transaction's own isolation applies.
    """
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def state_from_database(cloth_id: int) -> dict:
    """What the gate of ``cloth_id`` must hold, computed from one consistent PostgreSQL snapshot."""
    with one_snapshot():
        items = list(StockItem.objects.filter(cloth_id=cloth_id).values_list("variant_id", "total", "reserved", "sold"))
        rule = ClothRule.objects.filter(cloth_id=cloth_id).first()
        held = list(
            ReservationLine.objects.filter(
                cloth_id=cloth_id, reservation__state__in=[ReservationState.ACTIVE, ReservationState.SOLD]
            )
            .values_list(
                "reservation__order_id", "reservation__member_id", "reservation__state", "variant_id", "quantity"
            )
            .order_by("reservation__order_id", "variant_id")
        )
    start_ms, limit = _rule_ms(rule)
    bought: dict[str, int] = defaultdict(int)
    records: dict[int, dict] = {}
    for order_id, member_id, state, variant_id, quantity in held:
        bought[str(member_id)] += quantity
        rec = records.setdefault(
            order_id,
            {
                "order_id": str(order_id),
                "member": str(member_id),
                "state": RecordState.RESERVED if state == ReservationState.ACTIVE else RecordState.SOLD,
                "n": 0,
                "lines": [],
            },
        )
        rec["n"] += quantity
        rec["lines"].append(f"{variant_id}:{quantity}")
    for rec in records.values():
        rec["lines"] = ",".join(rec["lines"])
    return {
        "avail": {str(v): t - r - s for v, t, r, s in items},
        "start_ms": start_ms,
        "limit": limit,
        "bought": dict(bought),
        "records": list(records.values()),
    }


def load(cloth_id: int) -> bool:
    """Replace the gate of ``cloth_id`` with PostgreSQL's state. False if PostgreSQL has no stock for it."""
    data = state_from_database(cloth_id)
    if not data["avail"]:
        return False
    k = Keys(cloth_id)
    _script("load")(keys=[k.avail, k.rule, k.bought, k.orders], args=[json.dumps(data), k.record_prefix])
    logger.info(
        "stock gate of cloth %s loaded from PostgreSQL (%d variants, %d held orders)",
        cloth_id,
        len(data["avail"]),
        len(data["records"]),
    )
    return True


@contextmanager
def _loader(cloth_id: int):
    """Hold the cloth's load lock (one loader at a time); yields whether it was had in time."""
    lock = get_redis().lock(Keys(cloth_id).lock, timeout=30, blocking_timeout=settings.INVENTORY_GATE_LOAD_WAIT_SECONDS)
    if not lock.acquire():
        yield False
        return
    try:
        yield True
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - an expired lock only means another loader may run; loads are whole
            logger.info("gate load lock of cloth %s had expired", cloth_id)


def reload(cloth_id: int) -> bool:
    """Replace the gate of ``cloth_id`` with PostgreSQL's state, one loader at a time (repairs)."""
    with _loader(cloth_id) as mine:
        return mine and load(cloth_id)


def ensure_loaded(cloth_id: int) -> bool:
    """Load the gate of ``cloth_id`` if its keys are missing; one loader at a time per cloth.

    Others wait for the loader's lock and then find the keys there. Returns whether the
    cloth is loaded now.
    """
    if is_loaded(cloth_id):
        return True
    with _loader(cloth_id) as mine:
        if not mine or is_loaded(cloth_id):
            return is_loaded(cloth_id)
        return load(cloth_id)


def loaded_cloth_ids() -> list[int]:
    """Clothes whose gate is in Redis (scans the rule keys)."""
    ids = []
    for key in get_redis().scan_iter(match="{cloth:*}:rule", count=500):
        raw = key.decode()
        ids.append(int(raw[len("{cloth:") : raw.index("}")]))
    return sorted(ids)

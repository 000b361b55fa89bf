"""The order service's calls to other services: catalog details (cached) and inventory reservations.

Tests patch these functions, not the HTTP underneath: they are the boundary.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache

from shared import upstream

logger = logging.getLogger(__name__)

_VARIANT_KEY = "catalog:variant:{}"


@dataclass(frozen=True)
class VariantInfo:
    """What an order line copies from the catalog: the price is the server's, never the client's."""

    variant_id: int
    cloth_id: int
    name: str
    size: str
    price: Decimal


def _parse_variant(raw: dict[str, Any]) -> VariantInfo:
    return VariantInfo(
        variant_id=int(raw["variant_id"]),
        cloth_id=int(raw["cloth_id"]),
        name=str(raw["name"]),
        size=str(raw["size"]),
        price=Decimal(str(raw["price"])),
    )


# variant id -> (its details, the wall-clock time until which the catalog's answer holds)
_details: dict[int, tuple[VariantInfo, float]] = {}
_DETAILS_KEPT = 10_000


def forget_variant_details() -> None:
    """Drop this process's copies (tests; nothing else needs it: they expire by themselves)."""
    _details.clear()


def variant_details(variant_ids: list[int]) -> dict[int, VariantInfo]:
    """Details of the given variants; unknown ones are left out.

    An answer of the catalog holds for ORDER_CATALOG_CACHE_SECONDS from the moment the
    catalog gave it: this process keeps it in memory, and the shared cache (Redis) for the
    others, with the time it was fetched, so during a drop only the first order of each
    variant pays the catalog hop, and each process's first the Redis read. A price change
    shows after at most that long, whichever copy answers.
    """
    wanted = list(dict.fromkeys(int(v) for v in variant_ids))
    if not wanted:
        return {}
    now = time.time()
    found: dict[int, VariantInfo] = {}
    for v in wanted:
        kept = _details.get(v)
        if kept is not None and kept[1] > now:
            found[v] = kept[0]
    if len(found) == len(wanted):
        return found
    ttl = settings.ORDER_CATALOG_CACHE_SECONDS
    keys = {_VARIANT_KEY.format(v): v for v in wanted if v not in found}
    try:
        cached = cache.get_many(list(keys))
    except Exception as exc:  # noqa: BLE001 - a cache outage costs a catalog call, not the order
        logger.warning("catalog cache unreadable (%s); asking the catalog", exc)
        cached = {}
    for key, raw in cached.items():
        raw = dict(raw)
        fetched_at = float(raw.pop("fetched_at", now - ttl))
        info = VariantInfo(**{**raw, "price": Decimal(raw["price"])})
        found[keys[key]] = info
        _keep(info, fetched_at + ttl)
    missing = [v for v in wanted if v not in found]
    if missing:
        body = {"variant_ids": missing}
        answer = upstream.call_ok("catalog", "POST", "/cloth/details", body=body, idempotent=True) or {}  # a read
        fresh = {}
        for raw in answer.get("variants", []):
            info = _parse_variant(raw)
            if info.variant_id in keys.values():
                found[info.variant_id] = info
                _keep(info, now + ttl)
                fresh[_VARIANT_KEY.format(info.variant_id)] = {
                    **asdict(info),
                    "price": str(info.price),
                    "fetched_at": now,
                }
        if fresh:
            try:
                cache.set_many(fresh, timeout=ttl)
            except Exception as exc:  # noqa: BLE001 - next order asks the catalog again; harmless
                logger.warning("catalog cache not written (%s)", exc)
    return found


def _keep(info: VariantInfo, until: float) -> None:
    if len(_details) >= _DETAILS_KEPT:
        _details.clear()  # a bound, not an LRU: a drop has a handful of variants
    _details[info.variant_id] = (info, until)


class SoldOutMark(NamedTuple):
    #: the gate's answer: the SoldOut error's message and extra fields
    answer: dict[str, Any]
    #: time.monotonic() until which the variant counts as sold out
    until: float


# variant id -> its mark
_sold_out: dict[int, SoldOutMark] = {}


def known_sold_out(variant_ids: list[int]) -> SoldOutMark | None:
    """The stock gate's own recent "sold out" answer for one of these variants, if any.

    In a drop most clicks come after the last unit is gone. Remembering the gate's answer
    for ORDER_SOLD_OUT_MEMORY_SECONDS (default 1 s) in this process answers them without
    an order id, an inventory hop or a Redis script. The mark only ever comes from the
    gate's answer, never from a failure elsewhere, and fades fast: a released unit is on
    sale again within a second.
    """
    if not _sold_out:
        return None
    now = time.monotonic()
    for variant_id in variant_ids:
        mark = _sold_out.get(variant_id)
        if mark is not None:
            if mark.until > now:
                return mark
            _sold_out.pop(variant_id, None)
    return None


def reserve_stock(*, order_id: int, member_id: int, lines: list[dict[str, int]], deadline: dt.datetime) -> dict:
    """Reserve all lines or none. 409 sold_out / not_on_sale / limit_exceeded pass through as ShopErrors."""
    try:
        return upstream.call_ok(
            "inventory",
            "POST",
            "/internal/reservations",
            body={"order_id": order_id, "member_id": member_id, "lines": lines, "deadline": deadline.isoformat()},
            member_id=member_id,
            idempotent=True,  # keyed by the order id: the inventory answers a repeat the same
        )
    except upstream.UpstreamError as exc:
        variant_id = exc.extra.get("variant_id")
        memory = settings.ORDER_SOLD_OUT_MEMORY_SECONDS
        if exc.code == "sold_out" and isinstance(variant_id, int) and memory > 0:
            _sold_out[variant_id] = SoldOutMark({"message": exc.message, **exc.extra}, time.monotonic() + memory)
        raise


def release_stock(*, order_id: int, reason: str) -> None:
    """Give a reservation back (idempotent on the inventory side)."""
    upstream.call_ok(
        "inventory",
        "POST",
        f"/internal/reservations/{order_id}/release",
        body={"reason": reason},
        idempotent=True,  # a released order stays released
    )


# --------------------------------------------------------------------------------------
# The saga's reconciliation (orders/reconcile.py): what the other services hold
# --------------------------------------------------------------------------------------


def charged_payments(*, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
    """Payments still COMPLETED that last changed in ``[since, until)``: ``[{payment_id, order_id, ...}]``."""
    window = {"since": since.isoformat(), "until": until.isoformat()}
    answer = upstream.call_ok("payment", "POST", "/internal/payments/charged", body=window, idempotent=True)  # a read
    return answer["payments"]


def reservations(
    order_ids: list[int], *, active_since: dt.datetime | None = None, active_until: dt.datetime | None = None
) -> dict[str, Any]:
    """Inventory's reservation states of ``order_ids``, and its ACTIVE reservations made in a window."""
    body: dict[str, Any] = {"order_ids": order_ids}
    if active_since is not None and active_until is not None:
        body |= {"active_since": active_since.isoformat(), "active_until": active_until.isoformat()}
    return upstream.call_ok("inventory", "POST", "/internal/reservations/lookup", body=body, idempotent=True)  # a read


def replay_events(service: str, *, aggregate_type: str, aggregate_ids: list[Any]) -> int:
    """Ask ``service`` to publish the events of these aggregates again; returns how many it sent."""
    answer = upstream.call_ok(
        service,
        "POST",
        "/internal/events/replay",
        body={"aggregate_type": aggregate_type, "aggregate_ids": [str(i) for i in aggregate_ids]},
        idempotent=True,  # events published twice are applied once by every consumer
    )
    return int(answer["replayed"])

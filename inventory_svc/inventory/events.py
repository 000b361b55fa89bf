"""Events the inventory consumes: the catalog's clothes, and the order saga's outcomes.

Each handler runs inside the inbox transaction (applied once per event) and calls the
same service function as the internal API.
"""

from __future__ import annotations

import datetime as dt
import logging

from inventory import services
from shared.errors import IllegalTransition, NotFound
from shared.messaging.events import Event
from shared.messaging.handlers import handles

logger = logging.getLogger(__name__)


def _order_id(event: Event) -> int:
    return int(event.payload.get("order_id") or event.aggregate_id)


def _when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@handles("ClothCreated", topic="catalog")
@handles("ClothUpdated", topic="catalog")
def on_cloth_changed(event: Event) -> None:
    p = event.payload
    services.register_stock(
        cloth_id=int(p["cloth_id"]),
        sale_starts_at=_when(p.get("sale_starts_at")),
        purchase_limit=int(p.get("purchase_limit") or 0),
        variants=[
            {"variant_id": int(v["variant_id"]), "stock": int(v.get("stock", 0)), "size": str(v.get("size") or "")}
            for v in p.get("variants", [])
        ],
        name=str(p.get("name") or ""),
        actor=f"event:{event.event_type}",
    )


@handles("OrderCancelled", topic="orders")
@handles("OrderExpired", topic="orders")
@handles("OrderPaymentFailed", topic="orders")
def on_order_ended(event: Event) -> None:
    reason = str(event.payload.get("reason") or event.event_type)
    try:
        services.release_reservation(order_id=_order_id(event), reason=reason, actor=f"event:{event.event_type}")
    except IllegalTransition as exc:
        # e.g. a cancel racing a payment that already sold the units: the sale stands.
        logger.warning("%s for order %s not applied to stock: %s", event.event_type, _order_id(event), exc)


@handles("OrderPaid", topic="orders")
def on_order_paid(event: Event) -> None:
    try:
        services.sell_reservation(order_id=_order_id(event), actor=f"event:{event.event_type}")
    except NotFound:
        # Paid with no reservation here at all: nothing can be sold, the order side must refund.
        services.report_unsellable(order_id=_order_id(event), member_id=event.payload.get("member_id"))


@handles("OrderRefunded", topic="orders")
def on_order_refunded(event: Event) -> None:
    if event.payload.get("restock") is False:
        logger.info("order %s refunded without restock (its units were never sold)", _order_id(event))
        return
    try:
        services.return_reservation(
            order_id=_order_id(event),
            reason=str(event.payload.get("reason") or "refunded"),
            actor=f"event:{event.event_type}",
        )
    except (IllegalTransition, NotFound) as exc:
        logger.warning("OrderRefunded for order %s not applied to stock: %s", _order_id(event), exc)

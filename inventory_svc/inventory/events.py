"""Events the inventory consumes: the catalog's clothes, and the order saga's outcomes.

Each handler runs inside the inbox transaction (applied once per event) and calls the
same service function as the internal API. A poll's paid orders share one such
transaction (``together``), each sold as alone.
"""

from __future__ import annotations

import logging

from inventory import services
from shared.contracts.catalog import ClothCreated, ClothUpdated
from shared.contracts.order import OrderCancelled, OrderExpired, OrderPaid, OrderPaymentFailed, OrderRefunded
from shared.errors import IllegalTransition, NotFound
from shared.messaging.events import Event
from shared.messaging.handlers import handles

logger = logging.getLogger(__name__)


@handles(ClothCreated)
@handles(ClothUpdated)
def on_cloth_changed(event: Event[ClothCreated | ClothUpdated]) -> None:
    """`register_stock`: the cloth's rule (sale start, limit) is updated, unknown variants are
    registered with their stock, known ones keep their counts; the gate is loaded."""
    cloth = event.payload
    services.register_stock(
        cloth_id=cloth.cloth_id,
        sale_starts_at=cloth.sale_starts_at,
        purchase_limit=cloth.purchase_limit,
        variants=[{"variant_id": v.variant_id, "stock": v.stock, "size": v.size} for v in cloth.variants],
        name=cloth.name,
        actor=f"event:{event.event_type}",
    )


@handles(OrderCancelled)
@handles(OrderExpired)
@handles(OrderPaymentFailed)
def on_order_ended(event: Event[OrderCancelled | OrderExpired | OrderPaymentFailed]) -> None:
    """`release_reservation`; a SOLD reservation stays sold (logged)."""
    order = event.payload
    try:
        services.release_reservation(
            order_id=order.order_id, reason=order.reason or event.event_type, actor=f"event:{event.event_type}"
        )
    except IllegalTransition as exc:
        # e.g. a cancel racing a payment that already sold the units: the sale stands.
        logger.warning("%s for order %s not applied to stock: %s", event.event_type, order.order_id, exc)


@handles(OrderPaid, together=True)
def on_order_paid(event: Event[OrderPaid]) -> None:
    """`sell_reservation`; a RELEASED reservation is taken again if its units are still free,
    else `StockSellFailed`; no reservation at all: `StockSellFailed`."""
    order = event.payload
    try:
        services.sell_reservation(order_id=order.order_id, actor=f"event:{event.event_type}")
    except NotFound:
        # Paid with no reservation here at all: nothing can be sold, the order side must refund.
        services.report_unsellable(order_id=order.order_id, member_id=order.member_id)


@handles(OrderRefunded)
def on_order_refunded(event: Event[OrderRefunded]) -> None:
    """`return_reservation`, only when `restock` is true (false: the units were never sold)."""
    order = event.payload
    if not order.restock:
        logger.info("order %s refunded without restock (its units were never sold)", order.order_id)
        return
    try:
        services.return_reservation(
            order_id=order.order_id, reason=order.reason or "refunded", actor=f"event:{event.event_type}"
        )
    except (IllegalTransition, NotFound) as exc:
        logger.warning("OrderRefunded for order %s not applied to stock: %s", order.order_id, exc)

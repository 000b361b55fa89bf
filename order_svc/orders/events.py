"""The events the order service consumes: the payment's outcome and the inventory's sale.

Each handler runs inside the inbox transaction (``shared.messaging.handlers.apply_event``),
so its change and the "applied" mark commit together: a redelivery changes nothing.
"""

from __future__ import annotations

from decimal import Decimal

from orders import services
from shared.messaging.events import Event
from shared.messaging.handlers import handles


@handles("PaymentCompleted", topic="payments")
def on_payment_completed(event: Event) -> None:
    p = event.payload
    services.record_payment_completed(
        order_id=int(p["order_id"]),
        payment_id=int(p["payment_id"]),
        amount=Decimal(str(p["amount"])),
        event_id=event.event_id,
    )


@handles("PaymentFailed", topic="payments")
def on_payment_failed(event: Event) -> None:
    p = event.payload
    services.record_payment_failed(
        order_id=int(p["order_id"]),
        payment_id=int(p["payment_id"]),
        reason=str(p.get("reason", "declined")),
        event_id=event.event_id,
    )


@handles("PaymentRefunded", topic="payments")
def on_payment_refunded(event: Event) -> None:
    p = event.payload
    services.record_payment_refunded(
        order_id=int(p["order_id"]), payment_id=int(p["payment_id"]), event_id=event.event_id
    )


@handles("StockSellFailed", topic="inventory")
def on_stock_sell_failed(event: Event) -> None:
    services.record_stock_sell_failed(order_id=int(event.payload["order_id"]), event_id=event.event_id)

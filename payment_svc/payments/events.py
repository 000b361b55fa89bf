"""The events the payment service consumes: refunds asked for, orders that ended unpaid.

Each handler runs inside the inbox transaction, so a redelivered event changes nothing.
"""

from __future__ import annotations

from payments import services
from shared.messaging.events import Event
from shared.messaging.handlers import handles


@handles("RefundRequested", topic="orders")
def on_refund_requested(event: Event) -> None:
    p = event.payload
    payment_id = p.get("payment_id")
    services.refund_order_payment(
        order_id=int(p["order_id"]),
        payment_id=int(payment_id) if payment_id else None,
        reason=str(p.get("reason", "")),
        event_id=event.event_id,
    )


@handles("OrderExpired", topic="orders")
def on_order_expired(event: Event) -> None:
    services.cancel_open_payments(order_id=int(event.payload["order_id"]), reason="order_expired")


@handles("OrderCancelled", topic="orders")
def on_order_cancelled(event: Event) -> None:
    services.cancel_open_payments(order_id=int(event.payload["order_id"]), reason="order_cancelled")

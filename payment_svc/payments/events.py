"""The events the payment service consumes: refunds asked for, orders that ended unpaid,
and every change of an order's status (kept beside its payments for the admin).

Each handler runs inside the inbox transaction, so a redelivered event changes nothing.
"""

from __future__ import annotations

from payments import services
from shared.messaging.events import Event
from shared.messaging.handlers import handles

#: Refunds asked of a PAID order move it to REFUND_REQUESTED; the others (money that came
#: for an order that had ended, or a second charge) leave the order's status as it was.
_REFUND_OF_PAID_ORDER = ("member_request", "admin", "stock_unavailable")


@handles("RefundRequested", topic="orders")
def on_refund_requested(event: Event) -> None:
    p = event.payload
    if p.get("reason") in _REFUND_OF_PAID_ORDER:
        services.note_order_status(order_id=int(p["order_id"]), status="REFUND_REQUESTED")
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
    services.note_order_status(order_id=int(event.payload["order_id"]), status="EXPIRED")


@handles("OrderCancelled", topic="orders")
def on_order_cancelled(event: Event) -> None:
    services.cancel_open_payments(order_id=int(event.payload["order_id"]), reason="order_cancelled")
    services.note_order_status(order_id=int(event.payload["order_id"]), status="CANCELLED")


_STATUS_AFTER = {"OrderPaid": "PAID", "OrderPaymentFailed": "PAYMENT_FAILED", "OrderRefunded": "REFUNDED"}


@handles("OrderPaid", topic="orders")
@handles("OrderPaymentFailed", topic="orders")
@handles("OrderRefunded", topic="orders")
def on_order_status_changed(event: Event) -> None:
    services.note_order_status(order_id=int(event.payload["order_id"]), status=_STATUS_AFTER[event.event_type])

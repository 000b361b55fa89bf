"""The events the payment service consumes: refunds asked for, orders that ended unpaid,
and every change of an order's status (kept beside its payments for the admin).

Each handler runs inside the inbox transaction, so a redelivered event changes nothing.
"""

from __future__ import annotations

from payments import services
from shared.contracts.order import (
    REFUNDS_OF_PAID_ORDER,
    OrderCancelled,
    OrderExpired,
    OrderPaid,
    OrderPaymentFailed,
    OrderRefunded,
    OrderStatus,
    RefundRequested,
)
from shared.messaging.events import Event
from shared.messaging.handlers import handles


@handles(RefundRequested)
def on_refund_requested(event: Event[RefundRequested]) -> None:
    """The order's charged payment (`payment_id`, else the order's) is refunded once through
    the provider, with a refund key derived from the payment: REFUNDED and
    `PaymentRefunded`; already refunded or nothing charged: nothing. A refund of a PAID
    order also notes its status REFUND_REQUESTED."""
    refund = event.payload
    if refund.reason in REFUNDS_OF_PAID_ORDER:
        services.note_order_status(order_id=refund.order_id, status=OrderStatus.REFUND_REQUESTED)
    services.refund_order_payment(
        order_id=refund.order_id,
        payment_id=refund.payment_id or None,
        reason=refund.reason,
        event_id=event.event_id,
    )


@handles(OrderExpired)
def on_order_expired(event: Event[OrderExpired]) -> None:
    """The order's open (PENDING) payments are CANCELLED; its status is noted."""
    services.cancel_open_payments(order_id=event.payload.order_id, reason="order_expired")
    services.note_order_status(order_id=event.payload.order_id, status=OrderStatus.EXPIRED)


@handles(OrderCancelled)
def on_order_cancelled(event: Event[OrderCancelled]) -> None:
    """The order's open (PENDING) payments are CANCELLED; its status is noted."""
    services.cancel_open_payments(order_id=event.payload.order_id, reason="order_cancelled")
    services.note_order_status(order_id=event.payload.order_id, status=OrderStatus.CANCELLED)


_STATUS_AFTER = {
    OrderPaid.event_type(): OrderStatus.PAID,
    OrderPaymentFailed.event_type(): OrderStatus.PAYMENT_FAILED,
    OrderRefunded.event_type(): OrderStatus.REFUNDED,
}


@handles(OrderPaid, together=True)
@handles(OrderPaymentFailed, together=True)
@handles(OrderRefunded, together=True)
def on_order_status_changed(event: Event[OrderPaid | OrderPaymentFailed | OrderRefunded]) -> None:
    """The order's status is kept beside its payments (`order_status`, shown in the admin)."""
    services.note_order_status(order_id=event.payload.order_id, status=_STATUS_AFTER[event.event_type])

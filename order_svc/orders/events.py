"""The events the order service consumes: the payment's outcome and the inventory's sale.

Each handler runs inside the inbox transaction (``shared.messaging.handlers.apply_event``),
so its change and the "applied" mark commit together: a redelivery changes nothing. A
poll's payment outcomes share one such transaction (``together``), each handled as alone.
"""

from __future__ import annotations

from orders import services
from shared.contracts.inventory import StockSellFailed
from shared.contracts.payment import PaymentCompleted, PaymentFailed, PaymentRefunded
from shared.messaging.events import Event
from shared.messaging.handlers import handles


@handles(PaymentCompleted, together=True)
def on_payment_completed(event: Event[PaymentCompleted]) -> None:
    """PENDING_PAYMENT → PAID and `OrderPaid`; an order already ended →
    `RefundRequested(late_payment)`; paid by another payment →
    `RefundRequested(duplicate_payment)`; the same payment again → nothing."""
    payment = event.payload
    services.record_payment_completed(
        order_id=payment.order_id, payment_id=payment.payment_id, amount=payment.amount, event_id=event.event_id
    )


@handles(PaymentFailed, together=True)
def on_payment_failed(event: Event[PaymentFailed]) -> None:
    """PENDING_PAYMENT → PAYMENT_FAILED and `OrderPaymentFailed`; otherwise nothing."""
    payment = event.payload
    services.record_payment_failed(
        order_id=payment.order_id, payment_id=payment.payment_id, reason=payment.reason, event_id=event.event_id
    )


@handles(PaymentRefunded)
def on_payment_refunded(event: Event[PaymentRefunded]) -> None:
    """REFUND_REQUESTED → REFUNDED and `OrderRefunded`; otherwise only recorded in the order's
    history (a late or duplicate payment went back)."""
    payment = event.payload
    services.record_payment_refunded(order_id=payment.order_id, payment_id=payment.payment_id, event_id=event.event_id)


@handles(StockSellFailed)
def on_stock_sell_failed(event: Event[StockSellFailed]) -> None:
    """PAID → REFUND_REQUESTED (`stock_unavailable`) and `RefundRequested`."""
    services.record_stock_sell_failed(order_id=event.payload.order_id, event_id=event.event_id)

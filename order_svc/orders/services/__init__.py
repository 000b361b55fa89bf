"""Every write to an order: placing, cancelling, refunding, the saga's moves, expiry.

Each function is one transaction; every state change goes through ``lifecycle.transition``
(the state machine) and announces itself through the outbox in the same transaction.

One module per job; callers import from here:

- ``placing``: placing an order, the hot path of a drop (reserve, then one transaction),
  with the early sold-out answer and the claim of the request's Idempotency-Key;
- ``lifecycle``: the state machine, and what a member, staff or the payment service asks
  of an order (cancel, hold for payment, refund);
- ``saga``: what payment and inventory events do to an order (called by ``orders/events.py``);
- ``expiry``: ending unpaid orders past their payment deadline (Celery beat).
"""

from orders.services.expiry import expire_overdue_orders
from orders.services.lifecycle import cancel_order, hold_for_payment, request_refund
from orders.services.placing import LineRequest, place_order, refuse_if_known_sold_out
from orders.services.saga import (
    record_payment_completed,
    record_payment_failed,
    record_payment_refunded,
    record_stock_sell_failed,
)

__all__ = [
    "LineRequest",
    "cancel_order",
    "expire_overdue_orders",
    "hold_for_payment",
    "place_order",
    "record_payment_completed",
    "record_payment_failed",
    "record_payment_refunded",
    "record_stock_sell_failed",
    "refuse_if_known_sold_out",
    "request_refund",
]

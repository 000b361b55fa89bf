"""Producer: `order` (order_svc). Topic: `orders` (with `KAFKA_TOPIC_PREFIX`), key =
`order_id`, `aggregate_type` = `order`. Amounts and prices are decimal strings. Every event
is written to the outbox in the same transaction as the order change it announces.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from shared.contracts.base import Contract, Shape


class OrderStatus(enum.StrEnum):
    """An order's status, as the order service's API and its events say it."""

    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    REFUND_REQUESTED = "REFUND_REQUESTED"
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    PAYMENT_FAILED = "PAYMENT_FAILED"


#: The states in which an order's units count as sold.
SOLD_STATES = (OrderStatus.PAID, OrderStatus.REFUND_REQUESTED)


class RefundReason(enum.StrEnum):
    """Why an order's money goes back."""

    #: the member asked (`PUT /orders/refund`)
    MEMBER_REQUEST = "member_request"
    #: staff asked, in the admin
    ADMIN = "admin"
    #: the inventory could not sell a paid order's units
    STOCK_UNAVAILABLE = "stock_unavailable"
    #: money arrived for an order that had ended (expired, cancelled, failed)
    LATE_PAYMENT = "late_payment"
    #: money arrived for an order another payment had paid
    DUPLICATE_PAYMENT = "duplicate_payment"


#: Refunds of a PAID order: it moves to REFUND_REQUESTED. The others leave its status as it was.
REFUNDS_OF_PAID_ORDER = (RefundReason.MEMBER_REQUEST, RefundReason.ADMIN, RefundReason.STOCK_UNAVAILABLE)


class OrderLine(Shape, frozen=True):
    """One line of an order."""

    variant_id: int
    cloth_id: int
    quantity: int
    unit_price: Decimal


class _OrderEvent(Contract, frozen=True):
    topic = "orders"
    aggregate_type = "order"
    key = "order_id"

    order_id: int
    member_id: int
    lines: list[OrderLine]


class OrderPlaced(_OrderEvent, frozen=True):
    """An order was written after the inventory reserved its stock (`POST /orders/add`,
    `/orders/add/Wishlist`). No consumer needs it (the reservation was made synchronously);
    for analytics and read models."""

    total: Decimal
    payment_deadline: dt.datetime


class OrderPaid(_OrderEvent, frozen=True):
    """`PaymentCompleted` was applied to a PENDING_PAYMENT order."""

    payment_id: int
    total: Decimal


class OrderCancelled(_OrderEvent, frozen=True):
    """The member (`PUT /orders/cancel`) or staff cancelled an unpaid order. The cancel already
    asked the inventory to release before answering, so the release this sets off is usually
    a no-op; it releases when the inventory was unreachable then."""

    reason: str = "cancelled"


class OrderExpired(_OrderEvent, frozen=True):
    """The beat job found the order unpaid past its `payment_deadline`."""

    reason: str = "payment_deadline_passed"


class OrderPaymentFailed(_OrderEvent, frozen=True):
    """`PaymentFailed` was applied to a PENDING_PAYMENT order."""

    payment_id: int
    reason: str


class RefundRequested(Contract, frozen=True):
    """An order's money must go back: the member or staff asked for a refund of a PAID order,
    the inventory could not sell a paid order, or money arrived for an order that had ended or
    was paid by another payment. For `late_payment` and `duplicate_payment` the order's own
    status does not change and no `OrderRefunded` follows: no stock moves, only money goes
    back."""

    topic = "orders"
    aggregate_type = "order"
    key = "order_id"

    order_id: int
    member_id: int
    #: null when the member asked: the order's charged payment is meant
    payment_id: int | None
    amount: Decimal
    reason: RefundReason


class OrderRefunded(_OrderEvent, frozen=True):
    """`PaymentRefunded` was applied to a REFUND_REQUESTED order."""

    payment_id: int
    reason: str
    #: false when the units were never sold (`stock_unavailable`): they must not be returned
    restock: bool = True


EVENTS = (OrderPlaced, OrderPaid, OrderCancelled, OrderExpired, OrderPaymentFailed, RefundRequested, OrderRefunded)
NOTES = """\
Each consumed event is applied once per event id (inbox); every state change is an
`OrderTransition` row with the event id as its cause.

## State machine

```
PENDING_PAYMENT ─► PAID ─► REFUND_REQUESTED ─► REFUNDED
       ├─► CANCELLED
       ├─► EXPIRED
       └─► PAYMENT_FAILED
```
Anything else raises `IllegalTransition` (409 `illegal_transition`).
"""

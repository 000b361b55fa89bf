"""Producer: `payment` (payment_svc). Topic: `payments` (with `KAFKA_TOPIC_PREFIX`), key =
`payment_id`, `aggregate_type` = `payment`. Amounts are decimal strings, always the amount
stored on the payment (taken from the order service), never a client's.
"""

from __future__ import annotations

from decimal import Decimal

from shared.contracts.base import Contract


class _PaymentEvent(Contract, frozen=True):
    topic = "payments"
    aggregate_type = "payment"
    key = "payment_id"

    payment_id: int
    order_id: int
    member_id: int
    amount: Decimal


class PaymentCompleted(_PaymentEvent, frozen=True):
    """The provider charged the card (`PUT /payment/{order_id}`)."""


class PaymentFailed(_PaymentEvent, frozen=True):
    """The provider declined the card. A provider timeout produces no event: the payment stays
    PENDING and the client retries with the same provider idempotency key."""

    #: e.g. `card_declined`
    reason: str = "declined"


class PaymentRefunded(_PaymentEvent, frozen=True):
    """The provider refunded a charged payment, on `RefundRequested`."""

    #: the `RefundRequested` reason
    reason: str = ""


EVENTS = (PaymentCompleted, PaymentFailed, PaymentRefunded)
NOTES = """\
Payment states: PENDING → COMPLETED → (REFUND_PENDING →) REFUNDED; PENDING → FAILED;
PENDING → CANCELLED. REFUND_PENDING is used when a provider accepts a refund that settles
later (`RefundResult.settled = False`); the fake provider settles at once. The database
allows at most one payment per order in COMPLETED / REFUND_PENDING / REFUNDED, and at most
one PENDING.
"""

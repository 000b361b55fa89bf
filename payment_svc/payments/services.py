"""Every write to a payment: open, charge, refund, cancel. One charge per order at most.

The charge runs with the payment's row locked, so two concurrent completions of one
order serialize: the second sees COMPLETED and charges nothing. The provider gets the
payment's idempotency key on every attempt, so a retry after a timeout never charges twice.
"""

from __future__ import annotations

import functools
import logging
import uuid

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from payments import clients
from payments.models import CHARGED_STATES, Payment, PaymentStatus
from payments.providers import ProviderTimeout, get_provider
from shared.contracts.order import OrderStatus
from shared.contracts.payment import PaymentCompleted, PaymentFailed, PaymentRefunded
from shared.errors import IllegalTransition, NotFound, PaymentDeclined, UpstreamTimeout
from shared.inserts import insert
from shared.messaging.events import outbox_rows, record_event
from shared.metrics import PAYMENTS
from shared.reads import prepare
from shared.updates import save_fields

logger = logging.getLogger(__name__)


def _check_payable(order: clients.OrderInfo) -> None:
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise IllegalTransition(
            f"This order is {order.status}; it does not await payment.", order_id=order.order_id, status=order.status
        )
    if order.payment_deadline <= timezone.now():
        raise IllegalTransition(
            "This order's payment deadline has passed.", order_id=order.order_id, status=order.status
        )


def open_payment(*, member_id: int, order_id: int) -> tuple[Payment, bool]:
    """Open a payment for one's own order awaiting payment; the amount is the order's total.

    Returns ``(payment, created)``: an open (or completed) payment of the order is returned again.
    """
    order = clients.get_order(order_id)
    if order.member_id != member_id:
        raise NotFound("No such order.")
    existing = _current(order_id=order_id, member_id=member_id)
    if existing is not None and existing.status in (PaymentStatus.PENDING, *CHARGED_STATES):
        return existing, False
    if existing is not None and existing.status == PaymentStatus.FAILED:
        # A declined payment ends the order (PAYMENT_FAILED, stock released): no second try on it.
        raise IllegalTransition(
            "The payment of this order was declined; the order is ended.",
            order_id=order_id,
            payment_id=existing.payment_id,
        )
    _check_payable(order)
    try:
        # One statement, which commits itself: a transaction around it would only add a BEGIN
        # and a COMMIT (two round trips). Called from a request, never inside a transaction.
        (payment,) = insert(
            [
                Payment(
                    order_id=order_id,
                    member_id=member_id,
                    amount=order.total,
                    provider=get_provider().name,
                    order_status=order.status,
                )
            ]
        )
    except IntegrityError:
        # A concurrent POST opened it first (one open payment per order): answer with that one.
        payment = _current(order_id=order_id, member_id=member_id)
        if payment is None:
            raise
        return payment, False
    logger.info("payment %s opened for order %s (%s)", payment.payment_id, order_id, payment.amount)
    return payment, True


_order_payments = prepare(
    lambda order_id, member_id: Payment.objects.filter(order_id=order_id, member_id=member_id).order_by("-payment_id")[
        :20
    ]
)
_order_payments_locked = prepare(
    lambda order_id, member_id: (
        Payment.objects.select_for_update().filter(order_id=order_id, member_id=member_id).order_by("-payment_id")[:20]
    )
)


def _current(*, order_id: int, member_id: int, lock: bool = False) -> Payment | None:
    """The payment that counts for an order: a charged one, else the open one, else the latest.

    With ``lock``, the order's payments are locked as they are read (inside a transaction).
    """
    payments = (_order_payments_locked if lock else _order_payments)(order_id=order_id, member_id=member_id)
    for wanted in (CHARGED_STATES, (PaymentStatus.PENDING,)):
        for payment in payments:
            if payment.status in wanted:
                return payment
    return payments[0] if payments else None


#: What a charge attempt changes; its outcome also changes the status (and the reference).
_ATTEMPT_FIELDS = ["attempts", "card_last4", "failure_reason", "updated_at"]
_CHARGE_FIELDS = [*_ATTEMPT_FIELDS, "status"]


def complete_payment(*, member_id: int, order_id: int, card_number: str) -> Payment:
    """Charge the order's open payment through the provider.

    Raises ``PaymentDeclined`` (402) after recording the failure, ``UpstreamTimeout`` (504)
    when the provider did not answer (the payment stays PENDING; retrying is safe), and
    ``IllegalTransition`` (409, nothing charged) when the order no longer awaits payment.
    Before charging, the order service holds the order for this payment, so a cancel
    cannot succeed while the charge is under way (``POST /internal/orders/{id}/payment-hold``).
    """
    with transaction.atomic():
        # Locked as it is read: two completions of one order serialize here, and the second
        # finds the first one's outcome.
        payment = _current(order_id=order_id, member_id=member_id, lock=True)
        if payment is None:
            raise NotFound("No payment for this order; open one with POST /payment first.")
        if payment.status in CHARGED_STATES:
            return payment  # paid already: the same answer, no second charge
        if payment.status != PaymentStatus.PENDING:
            raise IllegalTransition(f"This payment is {payment.status}.", payment_id=payment.payment_id)
        # The payment was opened by this member for their own order. Whether the order still
        # awaits payment (its state, its deadline) the hold decides, under the order's lock:
        # an order cancelled since the payment opened is 409 here, with nothing charged.
        clients.hold_order(order_id=order_id, payment_id=payment.payment_id)
        payment.attempts += 1
        payment.card_last4 = card_number[-4:]
        try:
            result = get_provider().charge(
                idempotency_key=payment.idempotency_key, amount=payment.amount, card_number=card_number
            )
        except ProviderTimeout as exc:
            payment.failure_reason = f"timeout: {exc}"[:200]
            save_fields(payment, _ATTEMPT_FIELDS)
            outcome = "timeout"
        else:
            if result.succeeded:
                payment.status = PaymentStatus.COMPLETED
                payment.provider_reference = result.reference
                payment.failure_reason = ""
                save_fields(
                    payment,
                    [*_CHARGE_FIELDS, "provider_reference"],
                    inserting=[outbox_rows(PaymentCompleted(**_facts(payment)))],
                )
                outcome = "completed"
            else:
                payment.status = PaymentStatus.FAILED
                payment.failure_reason = result.decline_reason or "declined"
                save_fields(
                    payment,
                    _CHARGE_FIELDS,
                    inserting=[outbox_rows(PaymentFailed(**_facts(payment), reason=payment.failure_reason))],
                )
                outcome = "declined"
    logger.info("payment %s of order %s: %s (attempt %d)", payment.payment_id, order_id, outcome, payment.attempts)
    PAYMENTS.labels(outcome).inc()
    if outcome == "timeout":
        raise UpstreamTimeout("The card network did not answer; try again, you will not be charged twice.")
    if outcome == "declined":
        raise PaymentDeclined(payment_id=payment.payment_id)
    return payment


def _facts(payment: Payment) -> dict:
    """What every payment event says of the payment."""
    return {
        "payment_id": payment.payment_id,
        "order_id": payment.order_id,
        "member_id": payment.member_id,
        "amount": payment.amount,
    }


def refund_order_payment(*, order_id: int, payment_id: int | None, reason: str, event_id: uuid.UUID) -> None:
    """Give an order's money back once (``RefundRequested``); runs in the consumer's transaction.

    The provider refund carries a key derived from the payment, so a retried event never
    refunds twice even if our commit was lost after the provider's answer.
    """
    rows = Payment.objects.select_for_update().filter(order_id=order_id, status__in=CHARGED_STATES)
    if payment_id is not None:
        rows = rows.filter(payment_id=payment_id)
    payment = rows.order_by("-payment_id").first()
    if payment is None:
        logger.error(
            "RefundRequested %s for order %s: no charged payment%s; nothing to refund",
            event_id,
            order_id,
            f" {payment_id}" if payment_id else "",
        )
        return
    if payment.status == PaymentStatus.REFUNDED:
        logger.info("payment %s of order %s already refunded", payment.payment_id, order_id)
        return
    result = get_provider().refund(
        idempotency_key=f"refund:{payment.idempotency_key}",
        charge_reference=payment.provider_reference,
        amount=payment.amount,
    )
    payment.refund_reference = result.reference
    payment.refund_reason = reason[:32]
    payment.status = PaymentStatus.REFUNDED if result.settled else PaymentStatus.REFUND_PENDING
    payment.save()
    if payment.status == PaymentStatus.REFUNDED:
        record_event(PaymentRefunded(**_facts(payment), reason=reason))
    logger.info("payment %s of order %s refunded (%s)", payment.payment_id, order_id, reason)


def cancel_open_payments(*, order_id: int, reason: str) -> int:
    """The order ended unpaid: its open payments can no longer be completed."""
    payments = list(Payment.objects.select_for_update().filter(order_id=order_id, status=PaymentStatus.PENDING))
    for payment in payments:
        payment.status = PaymentStatus.CANCELLED
        payment.failure_reason = reason[:200]
        save_fields(payment, ["status", "failure_reason", "updated_at"])
    return len(payments)


@functools.cache
def _note_status_sql() -> str:
    meta, quote = Payment._meta, connection.ops.quote_name
    status, order = quote(meta.get_field("order_status").column), quote(meta.get_field("order_id").column)
    return f"UPDATE {quote(meta.db_table)} SET {status} = %s WHERE {order} = %s AND {status} <> %s"


def note_order_status(*, order_id: int, status: OrderStatus) -> None:
    """Keep the order's status beside its payments, for the admin (the order service decides).

    One statement made once: it runs for every change of every order's status.
    """
    with connection.cursor() as cursor:
        cursor.execute(_note_status_sql(), [str(status), int(order_id), str(status)])

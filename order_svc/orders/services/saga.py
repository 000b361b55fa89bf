"""The saga: what payment and inventory events do to an order (called by orders/events.py)."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

from orders import selectors
from orders.models import RELEASED_STATES, OrderStatus, OrderTransition, PaymentSentBack
from orders.services.lifecycle import order_facts, refund_requested, request_refund_locked, transition
from shared.contracts.order import OrderPaid, OrderPaymentFailed, OrderRefunded, RefundReason

logger = logging.getLogger(__name__)


def record_payment_completed(*, order_id: int, payment_id: int, amount: Decimal, event_id: uuid.UUID) -> None:
    """PENDING_PAYMENT -> PAID and ``OrderPaid``; a payment for an ended order is sent back."""
    order = selectors.locked_order.first(order_id=order_id)
    if order is None:
        logger.error("PaymentCompleted %s for unknown order %s; nothing to do", event_id, order_id)
        return
    if order.status == OrderStatus.PENDING_PAYMENT:
        order.paid_by_payment_id = payment_id
        transition(
            order,
            OrderStatus.PAID,
            cause="payment_completed",
            event_id=event_id,
            actor=f"payment:{payment_id}",
            also_saved=("paid_by_payment_id",),
            events=[OrderPaid(**order_facts(order), payment_id=payment_id, total=order.total)],
        )
        return
    if order.paid_by_payment_id == payment_id:
        logger.info("order %s already paid by payment %s; nothing to do", order_id, payment_id)
        return
    # The money arrived for an order that is over (expired, cancelled, failed) or already
    # paid by another payment: it must go back, and no stock moves.
    reason = RefundReason.LATE_PAYMENT if order.status in RELEASED_STATES else RefundReason.DUPLICATE_PAYMENT
    if PaymentSentBack.objects.filter(payment_id=payment_id).exists():
        logger.info("refund of payment %s for order %s was asked already", payment_id, order_id)
        return
    OrderTransition.objects.create(
        order=order,
        from_status=order.status,
        to_status=order.status,
        cause=f"refund:{reason}",
        event_id=event_id,
        actor=f"payment:{payment_id}",
    )
    PaymentSentBack.objects.create(order=order, payment_id=payment_id, reason=reason, event_id=event_id)
    refund_requested(order, payment_id=payment_id, amount=amount, reason=reason)
    logger.warning(
        "payment %s arrived for order %s in state %s; refund requested (%s)", payment_id, order_id, order.status, reason
    )


def record_payment_failed(*, order_id: int, payment_id: int, reason: str, event_id: uuid.UUID) -> None:
    """PENDING_PAYMENT -> PAYMENT_FAILED and ``OrderPaymentFailed`` (inventory releases)."""
    order = selectors.locked_order.first(order_id=order_id)
    if order is None or order.status != OrderStatus.PENDING_PAYMENT:
        logger.info(
            "PaymentFailed %s for order %s in state %s; nothing to do",
            event_id,
            order_id,
            order.status if order else "unknown",
        )
        return
    transition(
        order,
        OrderStatus.PAYMENT_FAILED,
        cause=f"payment_failed:{reason}"[:64],
        event_id=event_id,
        actor=f"payment:{payment_id}",
        events=[OrderPaymentFailed(**order_facts(order), payment_id=payment_id, reason=reason)],
    )


def record_payment_refunded(*, order_id: int, payment_id: int, event_id: uuid.UUID) -> None:
    """REFUND_REQUESTED -> REFUNDED and ``OrderRefunded`` (inventory returns sold stock)."""
    order = selectors.locked_order.first(order_id=order_id)
    if order is None:
        logger.error("PaymentRefunded %s for unknown order %s; nothing to do", event_id, order_id)
        return
    if order.status != OrderStatus.REFUND_REQUESTED:
        # A late or duplicate payment went back: the order's own state does not change.
        OrderTransition.objects.create(
            order=order,
            from_status=order.status,
            to_status=order.status,
            cause="payment_refunded",
            event_id=event_id,
            actor=f"payment:{payment_id}",
        )
        return
    transition(
        order,
        OrderStatus.REFUNDED,
        cause="payment_refunded",
        event_id=event_id,
        actor=f"payment:{payment_id}",
        events=[
            OrderRefunded(
                **order_facts(order),
                payment_id=payment_id,
                reason=order.refund_reason,
                # Units that were never sold (StockSellFailed) must not be returned.
                restock=order.refund_reason != RefundReason.STOCK_UNAVAILABLE,
            )
        ],
    )


def record_stock_sell_failed(*, order_id: int, event_id: uuid.UUID) -> None:
    """Inventory could not sell a paid order's units (released meanwhile): refund the money."""
    order = selectors.locked_order.first(order_id=order_id)
    if order is None or order.status != OrderStatus.PAID:
        logger.info(
            "StockSellFailed %s for order %s in state %s; nothing to do",
            event_id,
            order_id,
            order.status if order else "unknown",
        )
        return
    request_refund_locked(order, reason=RefundReason.STOCK_UNAVAILABLE, actor="inventory", event_id=event_id)

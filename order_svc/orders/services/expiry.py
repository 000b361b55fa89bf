"""Expiry (Celery beat): unpaid orders past their payment deadline end, one batch at a time."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.models import Order, OrderLine, OrderStatus
from orders.services.lifecycle import order_facts, transition
from shared.contracts.order import OrderExpired

logger = logging.getLogger(__name__)


def expire_overdue_orders(*, now: dt.datetime | None = None, batch_size: int | None = None) -> int:
    """End unpaid orders past their deadline, one batch per transaction. Returns how many.

    ``SKIP LOCKED``: two sweeps (or a sweep and a payment) never wait on each other.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.ORDER_EXPIRY_BATCH_SIZE
    expired = 0
    while True:
        with transaction.atomic():
            batch = list(
                Order.objects.select_for_update(skip_locked=True)
                .filter(status=OrderStatus.PENDING_PAYMENT, payment_deadline__lt=now)
                .exclude(payment_hold_until__gt=now)  # a payment is charging it: its outcome decides
                .order_by("payment_deadline")[:batch_size]
            )
            if not batch:
                break
            lines_by_order: dict[int, list[OrderLine]] = {}
            for line in OrderLine.objects.filter(order_id__in=[o.order_id for o in batch]):
                lines_by_order.setdefault(line.order_id, []).append(line)
            for order in batch:
                order.known_lines = lines_by_order.get(order.order_id, [])
                transition(
                    order,
                    OrderStatus.EXPIRED,
                    cause="payment_deadline_passed",
                    actor="expiry",
                    events=[OrderExpired(**order_facts(order), reason="payment_deadline_passed")],
                )
            expired += len(batch)
        if len(batch) < batch_size:
            break
    if expired:
        logger.info("expired %d unpaid orders", expired)
    return expired

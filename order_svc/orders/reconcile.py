"""The saga's reconciliation: find where the services' stories of one order disagree, and
repair them through the saga's own events.

Each step of the saga travels as an event. An event that never arrives (a broker that lost
it, a consumer that never ran, an outbox row someone deleted) leaves two services telling
different stories: a card charged for an order still waiting for its payment, a paid order
whose units inventory never sold, units held for an order that was never written. Every
five minutes (and on demand: ``manage.py reconcile_saga``) this compares what the order service
holds with what the payment and inventory services hold, for changes older than
``SAGA_RECONCILE_GRACE_SECONDS`` (time for events in flight to land) and younger than
``SAGA_RECONCILE_WINDOW_SECONDS``, and repairs each disagreement by publishing again the
events that carry it: the service that missed one then applies it (consumers apply each
event once, so publishing again is always safe). A charge for an order that has ended is
thereby refunded by the saga's usual path (``RefundRequested(late_payment)``).

The three disagreements:
- money: a payment still COMPLETED whose order was not paid by it (or whose refund the
  payment service never got) -> the payment's events, or the order's refund request, again;
- stock: an order whose state implies a reservation state inventory does not have (PAID
  but not SOLD, ended but still ACTIVE...) -> the order's events, and inventory's for it, again;
- a reservation ACTIVE for an order this service never wrote -> released.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass

from django.conf import settings
from django.utils import timezone

from orders import clients
from orders.models import RELEASED_STATES, Order, OrderStatus, PaymentSentBack
from shared.messaging.models import OutboxEvent
from shared.messaging.publisher import replay

logger = logging.getLogger(__name__)

_BATCH = 500


@dataclass(frozen=True)
class Repair:
    """One disagreement found and what was done about it."""

    order_id: int
    problem: str
    action: str
    payment_id: int | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def reconcile_saga(
    *, now: dt.datetime | None = None, grace_seconds: float | None = None, window_seconds: float | None = None
) -> list[Repair]:
    """Compare the order service with payment and inventory, repair, and return what was repaired."""
    now = now or timezone.now()
    grace = dt.timedelta(seconds=settings.SAGA_RECONCILE_GRACE_SECONDS if grace_seconds is None else grace_seconds)
    window = dt.timedelta(seconds=settings.SAGA_RECONCILE_WINDOW_SECONDS if window_seconds is None else window_seconds)
    since, until = now - window, now - grace
    repairs = [
        *_charges_the_orders_do_not_show(since, until),
        *_orders_inventory_does_not_show(since, until),
        *_reservations_without_an_order(since, until),
    ]
    for repair in repairs:
        logger.warning(
            "reconciliation: order %s: %s -> %s%s",
            repair.order_id,
            repair.problem,
            repair.action,
            f" (payment {repair.payment_id})" if repair.payment_id else "",
        )
    return repairs


# --------------------------------------------------------------------------- money


def _charges_the_orders_do_not_show(since: dt.datetime, until: dt.datetime) -> list[Repair]:
    charges = clients.charged_payments(since=since, until=until)
    orders = Order.objects.in_bulk({int(c["order_id"]) for c in charges})
    paid_by = {order_id: order.paid_by_payment_id for order_id, order in orders.items()}
    refund_asked = _refunds_asked(list(orders))
    repairs = []
    for charge in charges:
        order_id, payment_id = int(charge["order_id"]), int(charge["payment_id"])
        order = orders.get(order_id)
        if order is None:
            repairs.append(Repair(order_id, "charge for an order this service does not know", "reported", payment_id))
            continue
        if order.status == OrderStatus.PAID and paid_by.get(order_id) == payment_id:
            continue  # the one charge that paid the order: as it should be
        if order.updated_at >= until:
            continue  # the order moved moments ago (a refund on its way): look again next time
        asked_at = refund_asked.get((order_id, payment_id))
        if asked_at is not None and asked_at >= until:
            continue  # the refund was asked moments ago: it is on its way
        asked = asked_at is not None or (
            order.status in (OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED) and paid_by.get(order_id) == payment_id
        )
        if asked:
            # The order asked for the money back; the payment service never heard of it.
            sent = _replay_own(order_id, event_types=["RefundRequested"])
            problem = f"charged, order {order.status}, refund not done"
            repairs.append(Repair(order_id, problem, f"refund request sent again ({sent})", payment_id))
        else:
            # The order never heard of the charge: PaymentCompleted again. A pending order is
            # then paid; one that ended asks for a refund (late or duplicate payment).
            sent = clients.replay_events("payment", aggregate_type="payment", aggregate_ids=[payment_id])
            problem = f"charged, order {order.status}"
            repairs.append(Repair(order_id, problem, f"payment events sent again ({sent})", payment_id))
    return repairs


def _refunds_asked(order_ids: list[int]) -> dict[tuple[int, int], dt.datetime]:
    """(order id, payment id) -> when: the late or duplicate payments the order asked to send back."""
    rows = PaymentSentBack.objects.filter(order_id__in=order_ids).values_list("order_id", "payment_id", "at")
    return {(order_id, payment_id): at for order_id, payment_id, at in rows}


# --------------------------------------------------------------------------- stock


def expected_reservation_state(order: Order) -> frozenset[str] | None:
    """The reservation states inventory may show for an order in this state (None: any)."""
    never_sold = order.refund_reason == "stock_unavailable"
    if order.status == OrderStatus.PAID:
        return frozenset({"SOLD"})
    if order.status == OrderStatus.REFUND_REQUESTED:
        return frozenset({"RELEASED"}) if never_sold else frozenset({"SOLD"})
    if order.status == OrderStatus.REFUNDED:
        return frozenset({"RELEASED"}) if never_sold else frozenset({"RETURNED"})
    if order.status in RELEASED_STATES:
        return frozenset({"RELEASED"})
    return None  # PENDING_PAYMENT: reserved, or released by inventory's own deadline


def _orders_inventory_does_not_show(since: dt.datetime, until: dt.datetime) -> list[Repair]:
    orders = list(
        Order.objects.filter(updated_at__gte=since, updated_at__lt=until)
        .exclude(status=OrderStatus.PENDING_PAYMENT)
        .only("order_id", "status", "refund_reason", "updated_at")
    )
    repairs = []
    for start in range(0, len(orders), _BATCH):
        batch = orders[start : start + _BATCH]
        held = {int(r["order_id"]): r for r in clients.reservations([o.order_id for o in batch])["reservations"]}
        for order in batch:
            expected = expected_reservation_state(order)
            reservation = held.get(order.order_id)
            if expected is None or reservation is None or reservation["state"] in expected:
                continue
            if order.status == OrderStatus.PAID and reservation.get("sell_failed"):
                problem = f"order PAID, its units could not be sold ({reservation['state']})"
            else:
                problem = f"order {order.status}, reservation {reservation['state']}"
            # The order's events carry its story to inventory; inventory's answer (sold, or
            # could not sell) comes back as its own events.
            sent = _replay_own(order.order_id)
            sent += clients.replay_events("inventory", aggregate_type="reservation", aggregate_ids=[order.order_id])
            repairs.append(Repair(order.order_id, problem, f"order and reservation events sent again ({sent})"))
    return repairs


# --------------------------------------------------------------------------- reservations


def _reservations_without_an_order(since: dt.datetime, until: dt.datetime) -> list[Repair]:
    active = clients.reservations([], active_since=since, active_until=until).get("active", [])
    ids = [int(r["order_id"]) for r in active]
    known = set(Order.objects.filter(order_id__in=ids).values_list("order_id", flat=True))
    repairs = []
    for order_id in ids:
        if order_id in known:
            continue
        # The reservation was made, the order was never written and its release never
        # arrived: the units go back now instead of at the reservation's deadline.
        clients.release_stock(order_id=order_id, reason="order_never_written")
        repairs.append(Repair(order_id, "units reserved for an order never written", "released"))
    return repairs


def _replay_own(order_id: int, *, event_types: list[str] | None = None) -> int:
    rows = OutboxEvent.objects.filter(aggregate_type="order", aggregate_id=str(order_id))
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    return replay(rows)

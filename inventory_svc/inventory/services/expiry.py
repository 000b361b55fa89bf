"""Expiry: reservations past their deadline are released even if the order side never says so."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from inventory.models import Reservation, ReservationState
from inventory.services.release import release_reservation
from shared.errors import IllegalTransition

logger = logging.getLogger(__name__)


def release_expired_reservations(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Release ACTIVE reservations past deadline + grace: none leaks if the order side never says."""
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=settings.INVENTORY_RESERVATION_GRACE_SECONDS)
    order_ids = list(
        Reservation.objects.filter(state=ReservationState.ACTIVE, deadline__lt=cutoff)
        .order_by("deadline")
        .values_list("order_id", flat=True)[:limit]
    )
    released = 0
    for order_id in order_ids:
        try:
            release_reservation(order_id=order_id, reason="deadline_passed", actor="inventory:expiry")
            released += 1
        except IllegalTransition:
            pass  # paid in the meantime
    if released:
        logger.info("released %d reservations past their deadline", released)
    return released

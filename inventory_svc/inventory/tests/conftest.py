"""Fixtures of the inventory tests: a clean gate and clothes registered through the service."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from inventory import gate, selectors, services
from inventory.models import StockItem
from shared.messaging.events import Event
from shared.testing import event_payload


@pytest.fixture(autouse=True)
def _clean(redis_db):
    selectors.forget_cached_variants()
    yield
    selectors.forget_cached_variants()


@pytest.fixture
def cloth(transactional_db):
    """cloth(cloth_id, {variant_id: stock}, starts_in=None, limit=0) -> registers it and loads its gate."""

    def make(cloth_id: int, variants: dict[int, int], *, starts_in: float | None = None, limit: int = 0) -> int:
        start = timezone.now() + dt.timedelta(seconds=starts_in) if starts_in is not None else None
        services.register_stock(
            cloth_id=cloth_id,
            sale_starts_at=start,
            purchase_limit=limit,
            variants=[{"variant_id": v, "stock": s} for v, s in variants.items()],
        )
        return cloth_id

    return make


def counts(variant_id: int) -> tuple[int, int, int]:
    """(available, reserved, sold) in PostgreSQL."""
    item = StockItem.objects.get(variant_id=variant_id)
    return item.available, item.reserved, item.sold


def gate_avail(cloth_id: int, variant_id: int) -> int | None:
    return gate.snapshot(cloth_id)["avail"].get(variant_id)


def reserve(order_id: int, member_id: int, *lines: tuple[int, int]) -> dict:
    return services.reserve_stock(
        order_id=order_id, member_id=member_id, lines=[{"variant_id": v, "quantity": q} for v, q in lines]
    )


def order_event(event_type: str, order_id: int, **payload) -> Event:
    import uuid

    return Event(
        event_id=uuid.uuid4(),
        event_type=event_type,
        event_version=1,
        occurred_at=timezone.now(),
        aggregate_type="order",
        aggregate_id=str(order_id),
        payload=event_payload(event_type, order_id=order_id, **payload),
        topic="orders",
    )

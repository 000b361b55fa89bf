"""Producer: `catalog` (catalog_svc). Topic: `catalog` (with `KAFKA_TOPIC_PREFIX`), key =
`cloth_id`, `aggregate_type` = `cloth`. Prices are decimal strings, times ISO 8601 (UTC) or
null. Each event is written to the outbox in the same transaction as the cloth change it
announces.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from shared.contracts.base import Contract, Shape


class ClothVariant(Shape, frozen=True):
    """A size of a cloth; `stock` is the size's first stock (a known variant's count belongs
    to the inventory, which ignores it)."""

    variant_id: int
    size: str = ""
    stock: int = 0


class _ClothEvent(Contract, frozen=True, kw_only=True):
    topic = "catalog"
    aggregate_type = "cloth"
    key = "cloth_id"

    cloth_id: int
    name: str
    brand: str = ""
    category: str = ""
    price: Decimal
    sale_starts_at: dt.datetime | None = None
    #: 0 = no limit
    purchase_limit: int = 0
    variants: list[ClothVariant] = []


class ClothCreated(_ClothEvent, frozen=True):
    """A cloth (a drop) is created: the `create_drop` command or the admin
    (`catalog.services.create_cloth`). The same registration also happens synchronously
    through `POST /internal/stock`; the event is the path that cannot be lost."""


class ClothUpdated(_ClothEvent, frozen=True):
    """Price, sale start or purchase limit changed, or sizes added
    (`catalog.services.update_cloth`, the admin). Carries all variants."""


EVENTS = (ClothCreated, ClothUpdated)
NOTES = """\
The shown stock is only ever what the inventory reported: a sold-out mark comes from the
stock gate itself, never from a failing consumer.
"""

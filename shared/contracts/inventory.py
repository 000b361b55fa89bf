"""Producer: `inventory` (inventory_svc). Topic: `inventory` (with `KAFKA_TOPIC_PREFIX`).
Each event is written to the outbox in the same PostgreSQL transaction as the stock change
it announces. A reservation's events are keyed by its `order_id`, `StockChanged` by the
cloth.
"""

from __future__ import annotations

import datetime as dt
import enum

from shared.contracts.base import Contract, Shape


class ReservedLine(Shape, frozen=True):
    """Units of one variant held, sold or given back for an order."""

    variant_id: int
    cloth_id: int
    quantity: int


class StockLevel(Shape, frozen=True):
    """A variant's counts after a change; `version` grows with every change of that variant."""

    variant_id: int
    available: int
    total: int
    version: int


class SellFailure(enum.StrEnum):
    """Why a paid order's units could not be sold."""

    #: the reservation was released (late payment) and its units are gone
    RELEASED_AND_SOLD_OUT = "released_and_sold_out"
    #: the order was never reserved here
    NO_RESERVATION = "no_reservation"


class _ReservationEvent(Contract, frozen=True):
    topic = "inventory"
    aggregate_type = "reservation"
    key = "order_id"

    order_id: int
    member_id: int


class StockReserved(_ReservationEvent, frozen=True):
    """A reservation was made (`POST /internal/reservations`). No consumer needs it (the order
    service got the answer synchronously); for analytics."""

    lines: list[ReservedLine]
    deadline: dt.datetime


class StockReleased(_ReservationEvent, frozen=True):
    """An ACTIVE reservation was released: the order was cancelled, expired or its payment
    failed, `POST /internal/reservations/{id}/release`, or the expiry beat job (deadline +
    `INVENTORY_RESERVATION_GRACE_SECONDS`)."""

    reason: str
    lines: list[ReservedLine]


class StockSold(_ReservationEvent, frozen=True):
    """A paid order's units were committed as sold (`OrderPaid`, `PUT /cloth/inventory`); also
    when a payment came after the release and the units were still free."""

    lines: list[ReservedLine]


class StockSellFailed(_ReservationEvent, frozen=True):
    """A payment came for a reservation that was released and whose units are gone, or for an
    order never reserved here: nothing was sold."""

    #: null when the order was never reserved here and its member is not known
    member_id: int | None
    reason: SellFailure
    #: the unit that was gone, or null
    variant_id: int | None = None


class StockReturned(_ReservationEvent, frozen=True):
    """A refunded order's sold units went back on sale (once)."""

    lines: list[ReservedLine]


class StockChanged(Contract, frozen=True):
    """A variant's available or total units changed (register, restock, correction, reserve,
    release, return, a sale after a release). Only the variants that changed. A plain sale
    (reserved to sold) does not change `available`, so it sends none."""

    topic = "inventory"
    aggregate_type = "stock"
    key = "cloth_id"

    cloth_id: int
    variants: list[StockLevel]


EVENTS = (StockReserved, StockReleased, StockSold, StockSellFailed, StockReturned, StockChanged)
NOTES = """\
Each consumed event is applied once per event id (inbox), and each service function is
also idempotent by the reservation's state (ACTIVE → RELEASED / SOLD, SOLD → RETURNED), so
the same outcome arriving through the API and an event moves stock once.
"""

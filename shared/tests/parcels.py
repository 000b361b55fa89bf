"""Event contracts of a made-up parcel service, for the messaging tests."""

from __future__ import annotations

from shared.contracts import Contract


class _ParcelEvent(Contract, frozen=True):
    topic = "parcels"
    aggregate_type = "parcel"
    key = "parcel_id"

    parcel_id: int
    explode: bool = False


class ParcelPacked(_ParcelEvent, frozen=True):
    """A parcel was packed."""

    weight: int = 0


class ParcelWeighed(_ParcelEvent, frozen=True):
    """A parcel was weighed."""


class ParcelLabelled(_ParcelEvent, frozen=True):
    """A parcel was labelled: no handler takes it (events a consumer reads past)."""

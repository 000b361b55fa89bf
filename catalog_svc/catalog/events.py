"""Events the catalog consumes: the inventory's stock counts, for the stock it shows."""

from __future__ import annotations

from catalog import services
from shared.contracts.inventory import StockChanged
from shared.messaging.events import Event
from shared.messaging.handlers import handles


@handles(StockChanged, batch=True)
def on_stock_changed(events: list[Event[StockChanged]]) -> None:
    """Sets each variant's shown stock to `available` unless a newer `version` was applied
    already (reports may arrive out of order), and invalidates the cached detail (and the
    lists when the cloth's in-stock flips). A poll's reports are applied as the newest per
    variant, in one transaction."""
    services.apply_stock_reports(
        [
            (
                event.payload.cloth_id,
                [
                    {"variant_id": v.variant_id, "available": v.available, "version": v.version}
                    for v in event.payload.variants
                ],
            )
            for event in events
        ]
    )

"""Events the catalog consumes: the inventory's stock counts, for the stock it shows."""

from __future__ import annotations

from catalog import services
from shared.messaging.events import Event
from shared.messaging.handlers import handles


@handles("StockChanged", topic="inventory", batch=True)
def on_stock_changed(events: list[Event]) -> None:
    """A drop sends one report per order: a poll's reports are applied as the newest per variant."""
    services.apply_stock_reports(
        [(int(event.payload["cloth_id"]), event.payload.get("variants", [])) for event in events]
    )

"""Events the catalog consumes: the inventory's stock counts, for the stock it shows."""

from __future__ import annotations

from catalog import services
from shared.messaging.events import Event
from shared.messaging.handlers import handles


@handles("StockChanged", topic="inventory")
def on_stock_changed(event: Event) -> None:
    services.apply_stock_changed(cloth_id=int(event.payload["cloth_id"]), variants=event.payload.get("variants", []))

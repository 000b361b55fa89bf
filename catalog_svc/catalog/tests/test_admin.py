"""Creating a cloth in the admin goes through the same service as the command."""

from __future__ import annotations

import pytest

from catalog.models import Cloth
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _inline(prefix: str, rows: list[tuple[str, int]], initial: int = 0) -> dict[str, str]:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, (size, stock) in enumerate(rows):
        data.update(
            {f"{prefix}-{i}-size": size, f"{prefix}-{i}-shown_stock": str(stock), f"{prefix}-{i}-sort_order": str(i)}
        )
    return data


def test_admin_creates_a_drop_with_its_sizes_and_registers_stock(admin_client, inventory_calls):
    data = {
        "name": "Hoodie",
        "brand": "Acme",
        "category": "tops",
        "description": "",
        "price": "79000",
        "image_url": "",
        "images": "[]",
        "sale_starts_at_0": "2030-01-01",
        "sale_starts_at_1": "09:00:00",
        "purchase_limit": "1",
        **_inline("variants", [("S", 4), ("M", 6)]),
    }
    r = admin_client.post("/admin/catalog/cloth/add/", data)
    assert r.status_code == 302, r.content[:2000]
    cloth = Cloth.objects.get()
    assert [(v.size, v.shown_stock) for v in cloth.variants.all()] == [("S", 4), ("M", 6)]
    assert OutboxEvent.objects.filter(event_type="ClothCreated").count() == 1
    assert inventory_calls and inventory_calls[0][2] == "/internal/stock"
    assert admin_client.get(f"/admin/catalog/cloth/{cloth.id}/change/").status_code == 200

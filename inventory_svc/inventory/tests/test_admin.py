"""The stock screens: names people read, the gate beside PostgreSQL, and gate repairs from the admin."""

from __future__ import annotations

import pytest

from inventory import gate, services
from inventory.tests.conftest import gate_avail, reserve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hoodie(transactional_db):
    services.register_stock(
        cloth_id=42,
        sale_starts_at=None,
        purchase_limit=0,
        name="Heavy Hoodie",
        variants=[{"variant_id": 4201, "stock": 5, "size": "S"}, {"variant_id": 4202, "stock": 7, "size": "M"}],
    )
    return 42


def test_stock_rows_show_the_cloth_name_and_size_and_the_gate_beside_postgresql(hoodie, admin_client):
    reserve(1, 9, (4201, 2))
    page = admin_client.get("/admin/inventory/stockitem/").content.decode()
    assert "Heavy Hoodie" in page and ">S<" in page and ">M<" in page
    assert "DRIFT" not in page and page.count(">yes<") == 2


def test_a_drifted_gate_is_flagged_and_the_rebuild_action_mends_it(hoodie, admin_client):
    gate.adjust(cloth_id=hoodie, variant_id=4202, delta=-3)  # units lost from the gate, as after a bad rebuild
    page = admin_client.get("/admin/inventory/stockitem/").content.decode()
    assert "DRIFT -3" in page
    from inventory.models import StockItem

    ids = list(StockItem.objects.filter(cloth_id=hoodie).values_list("pk", flat=True))
    r = admin_client.post("/admin/inventory/stockitem/", {"action": "rebuild_gate_action", "_selected_action": ids})
    assert r.status_code == 302
    assert gate_avail(hoodie, 4202) == 7
    assert "DRIFT" not in admin_client.get("/admin/inventory/stockitem/").content.decode()


def test_the_repair_action_runs_the_gate_repair_of_the_selected_clothes(hoodie, admin_client):
    from inventory.models import StockItem

    gate.reserve(cloth_id=hoodie, order_id=77, member_id=5, lines=[(4201, 1)])  # a record PostgreSQL never saw
    ids = list(StockItem.objects.filter(cloth_id=hoodie).values_list("pk", flat=True))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.conf.settings.INVENTORY_GATE_REPAIR_AGE_SECONDS", 0)
        r = admin_client.post("/admin/inventory/stockitem/", {"action": "repair_gate_action", "_selected_action": ids})
    assert r.status_code == 302
    assert gate_avail(hoodie, 4201) == 5


def test_a_reservation_shows_its_items_and_links_to_its_order_and_payment(hoodie, admin_client):
    reserve(3, 9, (4202, 1))
    page = admin_client.get("/admin/inventory/reservation/").content.decode()
    assert "Heavy Hoodie M ×1" in page
    assert "/admin/orders/order/3/change/" in page and "/admin/payments/payment/?order_id=3" in page


def test_names_arrive_with_the_catalogs_event_and_follow_a_rename(hoodie):
    from inventory.events import on_cloth_changed
    from inventory.models import StockItem
    from inventory.tests.conftest import order_event
    from shared.messaging.handlers import typed

    event = order_event("ClothUpdated", 0)
    event.payload.update(
        cloth_id=hoodie, name="Heavy Hoodie II", variants=[{"variant_id": 4202, "stock": 7, "size": "M"}]
    )
    on_cloth_changed(typed(event))
    assert set(StockItem.objects.values_list("cloth_name", flat=True)) == {"Heavy Hoodie II"}
    assert StockItem.objects.get(variant_id=4201).total == 5  # the counts are the inventory's own


def test_metrics_show_the_drops_units_in_the_gate_and_postgresql_and_the_drift_task_exports_drift(
    transactional_db, admin_client, client
):
    from django.utils import timezone
    from prometheus_client import REGISTRY

    from inventory import tasks

    services.register_stock(
        cloth_id=43,
        sale_starts_at=timezone.now(),
        purchase_limit=0,
        name="Drop Cap",
        variants=[{"variant_id": 4301, "stock": 4, "size": "ONE"}],
    )
    reserve(5, 9, (4301, 1))
    text = client.get("/metrics").content.decode()
    labels = 'cloth="Drop Cap",cloth_id="43",size="ONE",variant_id="4301"'
    assert f"shop_gate_available_units{{{labels}}} 3.0" in text
    assert f"shop_stock_available_units{{{labels}}} 3.0" in text

    gate.adjust(cloth_id=43, variant_id=4301, delta=-2)
    tasks.export_gate_drift()
    assert REGISTRY.get_sample_value("shop_gate_drift_units", {"cloth_id": "43"}) == 2

"""The inventory's beat jobs: release reservations the order side never ended; repair the gate."""

from __future__ import annotations

from celery import shared_task

from inventory import services


@shared_task(name="inventory.tasks.release_expired_reservations", ignore_result=True)
def release_expired_reservations() -> int:
    return services.release_expired_reservations()


@shared_task(name="inventory.tasks.export_gate_drift", ignore_result=True)
def export_gate_drift() -> int:
    """Compare the gate of the drops being watched with PostgreSQL, for /metrics (the repair is repair_gate's)."""
    from django.conf import settings

    from inventory import selectors
    from shared.metrics import GATE_DRIFT, GATE_DRIFT_CHECKED

    total = 0
    for cloth_id in selectors.drop_cloth_ids(hours=settings.INVENTORY_METRICS_DROP_HOURS):
        units = selectors.gate_drift_units(cloth_id)
        GATE_DRIFT.labels(str(cloth_id)).set(units)
        total += units
    GATE_DRIFT_CHECKED.set_to_current_time()
    return total


@shared_task(name="inventory.tasks.repair_gate", ignore_result=True)
def repair_gate() -> int:
    return services.repair_gate()["total"]

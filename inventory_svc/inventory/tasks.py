"""The inventory's beat jobs: release reservations the order side never ended; repair the gate."""

from __future__ import annotations

from celery import shared_task

from inventory import services


@shared_task(name="inventory.tasks.release_expired_reservations", ignore_result=True)
def release_expired_reservations() -> int:
    return services.release_expired_reservations()


@shared_task(name="inventory.tasks.repair_gate", ignore_result=True)
def repair_gate() -> int:
    return services.repair_gate()["total"]

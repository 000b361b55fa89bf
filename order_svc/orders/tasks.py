"""Celery beat jobs of the order service."""

from __future__ import annotations

from celery import shared_task

from orders import reconcile, services


@shared_task(name="orders.tasks.expire_overdue_orders", ignore_result=True)
def expire_overdue_orders() -> int:
    """End unpaid orders past their payment deadline (their stock is released by inventory)."""
    return services.expire_overdue_orders()


@shared_task(name="orders.tasks.reconcile_saga", ignore_result=True)
def reconcile_saga() -> int:
    """Compare orders with payments and reservations; repair what a lost event left apart."""
    return len(reconcile.reconcile_saga())

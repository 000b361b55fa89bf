"""The inventory service's Celery app (outbox relay and its own beat jobs)."""

from shared.celery import make_celery

app = make_celery("inventory")

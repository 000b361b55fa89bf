"""A service's Celery app, configured from its Django settings (CELERY_* keys)."""

from __future__ import annotations

import os

from celery import Celery


def make_celery(service: str) -> Celery:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    app = Celery(service)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()
    app.autodiscover_tasks(["shared.messaging"])
    app.set_default()
    return app

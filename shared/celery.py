"""A service's Celery app, configured from its Django settings (CELERY_* keys)."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger

#: Celery's own line per task ("received", "succeeded in", beat's "Sending due task"): the
#: relay runs after every window of commits, so these were most of a worker's log and of
#: what supervisord copies. Failures and retries still log (WARNING and up).
_PER_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


def make_celery(service: str) -> Celery:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    app = Celery(service)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()
    app.autodiscover_tasks(["shared.messaging"])
    app.autodiscover_tasks(["shared"], related_name="maintenance")
    app.set_default()
    return app


@after_setup_logger.connect
def _quiet_per_task_lines(**_: object) -> None:
    if os.environ.get("CELERY_LOG_EACH_TASK", "").lower() in ("1", "true", "yes"):
        return
    for name in _PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

"""The services' WSGI application: Django loaded whole, then kept out of the garbage collector's way.

Each web process (the gateway's gunicorn workers, the services' granian workers) loads the
application once and serves requests for hours. What it loaded (modules, the settings,
every view, serializer and URL pattern) lives as long as the process, yet CPython's
garbage collector walks it again in every full collection, holding the GIL: in a drop each
gateway worker stopped so for 0.11-0.38 s (docs/performance.md, seventeenth round).
``gc.freeze()`` moves what exists now into a generation the collector never walks, so a
full collection walks only what requests made since.
"""

from __future__ import annotations

import gc

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver


def loaded_application() -> WSGIHandler:
    """Django's WSGI application with every view imported, and what was loaded frozen.

    ``DJANGO_SETTINGS_MODULE`` must be set. The URL patterns are resolved here rather than
    by the first request, so the views and what they import are frozen too.
    """
    application = get_wsgi_application()
    get_resolver().url_patterns  # noqa: B018 - imports every view now
    gc.freeze()
    return application

"""The browser's middleware (sessions, CSRF, authentication, messages) for the admin only.

Every API request of a service comes from the gateway or another service: it carries no
cookie, its identity comes from the gateway's headers (``shared.internal_auth``), and
nothing in it reads a session or a message. Yet Django's browser middleware ran for it all
the same: a session store, a CSRF token check, a lazy user and a message store were made
for every request, about a sixth of a cached catalog read. :class:`AdminMiddleware` runs
the chain named in ``settings.ADMIN_MIDDLEWARE`` for ``/admin/`` requests, as Django
would have (each one wrapped so that its exceptions become responses, and their
``process_view`` hooks, CSRF's check among them, called in order), and passes every other
request straight on.

Django's admin checks look for the session, authentication and message middleware in
``MIDDLEWARE`` itself (``admin.E408``-``E410``); they run here, inside this one, and the
settings silence those three checks and no other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

#: The paths whose requests take the browser's middleware.
ADMIN_PREFIX = "/admin/"


class AdminMiddleware:
    """``settings.ADMIN_MIDDLEWARE`` around ``/admin/`` requests; the API passes by them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        handler: Callable[[HttpRequest], Any] = get_response
        self._view_hooks: list[Callable[..., HttpResponse | None]] = []
        for path in reversed(settings.ADMIN_MIDDLEWARE):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self._view_hooks.insert(0, middleware.process_view)
            handler = convert_exception_to_response(middleware)
        self._admin = handler

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(ADMIN_PREFIX):
            return self._admin(request)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: tuple, view_kwargs: dict
    ) -> HttpResponse | None:
        """The admin chain's own ``process_view`` hooks (CSRF's check), in their order."""
        if not request.path_info.startswith(ADMIN_PREFIX):
            return None
        for hook in self._view_hooks:
            response = hook(request, view_func, view_args, view_kwargs)
            if response is not None:
                return response
        return None

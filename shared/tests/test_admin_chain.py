"""The browser's middleware runs for the admin only (shared.admin_chain)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client, RequestFactory

from shared.admin_chain import AdminMiddleware

pytestmark = pytest.mark.django_db


def _seen(path: str) -> object:
    """The request as the view behind AdminMiddleware gets it."""
    seen = []

    def view(request):
        seen.append(request)
        return HttpResponse("ok")

    AdminMiddleware(view)(RequestFactory().get(path))
    return seen[0]


def test_an_api_request_passes_by_sessions_users_and_messages():
    request = _seen("/cloth/list")
    assert not hasattr(request, "session")
    assert not hasattr(request, "user")
    assert not hasattr(request, "_messages")


def test_an_admin_request_gets_its_session_user_and_messages():
    request = _seen("/admin/")
    assert hasattr(request, "session") and hasattr(request, "user") and hasattr(request, "_messages")
    assert not request.user.is_authenticated


def test_the_browser_middleware_is_in_the_admin_chain_not_in_middleware():
    assert "shared.admin_chain.AdminMiddleware" in settings.MIDDLEWARE
    for path in settings.ADMIN_MIDDLEWARE:
        assert path not in settings.MIDDLEWARE


def test_the_admin_still_checks_csrf():
    users = get_user_model()
    users.objects.create_superuser(**{users.USERNAME_FIELD: "ops@example.com"}, password="a-Long-pass-2026")
    client = Client(enforce_csrf_checks=True)
    form = {"username": "ops@example.com", "password": "a-Long-pass-2026"}
    assert client.post("/admin/login/", form).status_code == 403  # no CSRF token: refused
    client.get("/admin/login/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    r = client.post("/admin/login/?next=/admin/", {**form, "csrfmiddlewaretoken": token})
    assert r.status_code == 302 and r["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200

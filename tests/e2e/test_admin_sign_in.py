"""One staff sign-in across the services' admins, in a running stack (shared.staff)."""

from __future__ import annotations

import re
import uuid

import requests

from .conftest import operator
from .test_metrics import _service_url

PASSWORD = "Ops-Drop-Shop-2026!"


def _form_token(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=15).text
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_signing_in_at_one_admin_signs_in_at_all_and_signing_out_of_one_ends_all(monkeypatch):
    email = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    operator("member", "createsuperuser", "--noinput", "--email", email, "--name", "Ops")
    member, catalog, inventory = (_service_url(s) for s in ("member", "catalog", "inventory"))
    browser = requests.Session()  # like a browser: cookies go to every port of the host

    token = _form_token(browser, f"{member}/admin/login/")
    r = browser.post(
        f"{member}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token, "username": email, "password": PASSWORD},
        timeout=15,
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text
    for url in (catalog, inventory):
        r = browser.get(f"{url}/admin/", timeout=15, allow_redirects=False)
        assert r.status_code == 200 and "Site administration" in r.text, url

    token = _form_token(browser, f"{catalog}/admin/")  # the sign-out form in its header
    assert browser.post(f"{catalog}/admin/logout/", data={"csrfmiddlewaretoken": token}, timeout=15).status_code == 200
    for url in (member, inventory):
        r = browser.get(f"{url}/admin/", timeout=15, allow_redirects=False)
        assert r.status_code == 302 and "/admin/login/" in r.headers["Location"], url

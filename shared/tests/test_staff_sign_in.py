"""One staff sign-in across the admins: the signed ``shop_staff`` cookie (shared.staff)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from shared.staff import COOKIE, admin_url, order_links, read_staff_cookie, staff_cookie_value

pytestmark = pytest.mark.django_db


def test_signing_in_at_one_admin_sets_the_shared_staff_cookie():
    users = get_user_model()
    users.objects.create_superuser(**{users.USERNAME_FIELD: "ops@example.com"}, password="a-Long-pass-2026")
    client = Client()
    r = client.post("/admin/login/?next=/admin/", {"username": "ops@example.com", "password": "a-Long-pass-2026"})
    assert r.status_code == 302
    assert read_staff_cookie(client.cookies[COOKIE].value) == {"u": "ops@example.com", "s": True}
    assert client.cookies[COOKIE]["httponly"]


def test_a_staff_cookie_from_another_admin_signs_in_here_as_a_mirror_user():
    client = Client()
    client.cookies[COOKIE] = staff_cookie_value("lead@example.com", superuser=True)
    assert client.get("/admin/").status_code == 200
    users = get_user_model()
    mirror = users.objects.get(**{users.USERNAME_FIELD: "lead@example.com"})
    assert mirror.is_staff and mirror.is_superuser and not mirror.has_usable_password()


def test_a_forged_staff_cookie_signs_in_nobody():
    client = Client()
    client.cookies[COOKIE] = staff_cookie_value("lead@example.com", superuser=True)[:-3] + "abc"
    r = client.get("/admin/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    users = get_user_model()
    assert not users.objects.filter(**{users.USERNAME_FIELD: "lead@example.com"}).exists()


def test_signing_out_elsewhere_ends_the_session_here():
    client = Client()
    client.cookies[COOKIE] = staff_cookie_value("lead@example.com", superuser=True)
    assert client.get("/admin/").status_code == 200
    del client.cookies[COOKIE]  # another admin's sign-out deleted it
    r = client.get("/admin/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_signing_out_here_deletes_the_shared_cookie():
    client = Client()
    client.cookies[COOKIE] = staff_cookie_value("lead@example.com", superuser=True)
    client.get("/admin/")
    r = client.post("/admin/logout/")
    assert r.cookies[COOKIE].value == "" and r.cookies[COOKIE]["max-age"] == 0


def test_each_service_names_its_own_session_cookie(settings):
    assert settings.SESSION_COOKIE_NAME == f"{settings.SERVICE_NAME}_sessionid"
    assert settings.CSRF_COOKIE_NAME == f"{settings.SERVICE_NAME}_csrftoken"


def test_links_lead_from_an_order_to_its_reservation_and_payment(settings):
    settings.ADMIN_URLS = {**settings.ADMIN_URLS, "inventory": "http://ops.example:8004"}
    assert admin_url("inventory", "inventory/reservation/?order_id=7") == (
        "http://ops.example:8004/admin/inventory/reservation/?order_id=7"
    )
    links = order_links(7)
    assert 'href="http://ops.example:8004/admin/inventory/reservation/?order_id=7"' in links
    assert "/admin/payments/payment/?order_id=7" in links and "/admin/orders/order/7/change/" in links

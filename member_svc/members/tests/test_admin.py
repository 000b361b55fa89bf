"""The admin: members with their active sessions, and ending them."""

from __future__ import annotations

import pytest
from django.test import Client

from members.models import DeviceSession, Member
from members.tests.conftest import claims_of
from shared import tokens
from shared.errors import TokenInvalid

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    Member.objects.create_superuser("ops@example.com", "Ops-Pass-2026!")
    client = Client()
    assert client.login(email="ops@example.com", password="Ops-Pass-2026!")
    return client


def test_member_list_and_page_show_active_sessions(staff_client, member, login):
    login(member, "phone")
    assert staff_client.get("/admin/members/member/", {"q": "ada"}).status_code == 200
    page = staff_client.get(f"/admin/members/member/{member.pk}/change/")
    assert page.status_code == 200 and b"phone" in page.content


def test_ending_all_sessions_from_the_admin_logs_the_member_out_everywhere(staff_client, member, login):
    pair = login(member)
    r = staff_client.post("/admin/members/member/", {"action": "end_all_sessions", "_selected_action": [member.pk]})
    assert r.status_code == 302
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(pair.access_token)
    assert DeviceSession.objects.get().revoked_reason == "ended_by_staff"


def test_ending_one_session_from_the_admin(staff_client, member, login):
    phone, laptop = login(member, "phone"), login(member, "laptop")
    session = DeviceSession.objects.get(sid=claims_of(phone)["sid"])
    staff_client.post("/admin/members/devicesession/", {"action": "end_sessions", "_selected_action": [session.pk]})
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(phone.access_token)
    assert tokens.verify_access_token(laptop.access_token)


def test_a_member_cannot_use_the_admin(member):
    client = Client()
    client.force_login(member)
    r = client.get("/admin/members/member/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_deactivating_a_member_in_the_admin_logs_them_out(staff_client, member, login):
    pair = login(member)
    data = {
        "name": member.name,
        "phone": "",
        "address": "",
        "role": "MEMBER",
        "is_active": "",
        "sessions-TOTAL_FORMS": "1",
        "sessions-INITIAL_FORMS": "1",
        "sessions-MIN_NUM_FORMS": "0",
        "sessions-MAX_NUM_FORMS": "1000",
        "sessions-0-id": str(DeviceSession.objects.get().pk),
        "sessions-0-member": str(member.pk),
    }
    r = staff_client.post(f"/admin/members/member/{member.pk}/change/", data)
    assert r.status_code == 302, r.content[:2000]
    member.refresh_from_db()
    assert not member.is_active
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(pair.access_token)

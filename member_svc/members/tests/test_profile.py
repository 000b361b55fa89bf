"""My page (own profile only, e-mail and role not editable) and changing the password."""

from __future__ import annotations

import pytest

from members.models import DeviceSession, Member
from members.tests.conftest import PASSWORD, claims_of
from shared import tokens
from shared.errors import TokenInvalid

pytestmark = pytest.mark.django_db


def test_mypage_shows_my_profile_in_the_spec_shape(member_client, member):
    r = member_client(member.pk).get("/member/mypage")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"member_id", "email", "name", "phone", "address", "joined_at"}
    assert (body["member_id"], body["email"], body["name"], body["address"]) == (
        member.pk,
        member.email,
        "Ada",
        "Seoul",
    )


def test_mypage_is_always_the_callers_own(member_client, member):
    other = Member.objects.create_user("eve@example.com", PASSWORD, name="Eve")
    r = member_client(other.pk).get("/member/mypage", {"member_id": member.pk})
    assert r.json()["email"] == "eve@example.com"


def test_put_changes_name_phone_address_but_never_email_or_role(member_client, member):
    body = {
        "name": "Ada L.",
        "phone": "010-9999",
        "address": "Daegu",
        "email": "evil@example.com",
        "role": "ADMIN",
        "member_id": 999,
    }
    r = member_client(member.pk).put("/member/mypage", body, format="json")
    assert r.status_code == 200
    assert r.json()["email"] == "ada@example.com" and r.json()["member_id"] == member.pk
    member.refresh_from_db()
    assert (member.name, member.phone, member.address) == ("Ada L.", "010-9999", "Daegu")
    assert (member.email, member.role) == ("ada@example.com", "MEMBER")


def test_put_without_a_name_names_the_field(member_client, member):
    r = member_client(member.pk).put("/member/mypage", {"phone": "1"}, format="json")
    assert r.status_code == 400 and "name" in r.json()["error"]["fields"]
    r = member_client(member.pk).put("/member/mypage", {"name": "x" * 101}, format="json")
    assert r.status_code == 400 and "name" in r.json()["error"]["fields"]


def test_a_member_that_no_longer_exists_gets_404(member_client):
    assert member_client(424242).get("/member/mypage").status_code == 404


def test_password_change_needs_the_current_password(member_client, member, login):
    pair = login(member)
    r = member_client(member.pk, claims_of(pair)["sid"]).patch(
        "/member/password", {"current_password": "wrong-one", "new_password": "An0ther-Pass!"}, format="json"
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_password_change_ends_every_other_session_but_this_one(member_client, member, login):
    phone, laptop, tablet = login(member, "phone"), login(member, "laptop"), login(member, "tablet")
    r = member_client(member.pk, claims_of(phone)["sid"]).patch(
        "/member/password", {"current_password": PASSWORD, "new_password": "An0ther-Pass!"}, format="json"
    )
    assert r.status_code == 204
    member.refresh_from_db()
    assert member.check_password("An0ther-Pass!") and not member.check_password(PASSWORD)
    assert tokens.verify_access_token(phone.access_token)
    for pair in (laptop, tablet):
        with pytest.raises(TokenInvalid):
            tokens.verify_access_token(pair.access_token)
    assert set(DeviceSession.objects.filter(revoked_at__isnull=True).values_list("device_name", flat=True)) == {"phone"}


def test_a_weak_or_unchanged_new_password_names_new_password(member_client, member):
    client = member_client(member.pk)
    for new in ("abc", PASSWORD):
        r = client.patch("/member/password", {"current_password": PASSWORD, "new_password": new}, format="json")
        assert r.status_code == 400 and "new_password" in r.json()["error"]["fields"]


def test_missing_password_fields_are_named(member_client, member):
    r = member_client(member.pk).patch("/member/password", {}, format="json")
    assert r.status_code == 400
    assert {"current_password", "new_password"} <= set(r.json()["error"]["fields"])


def test_guessing_the_current_password_is_rate_limited(member_client, member):
    client = member_client(member.pk)
    for _ in range(10):
        assert (
            client.patch(
                "/member/password", {"current_password": "guess", "new_password": "An0ther-Pass!"}, format="json"
            ).status_code
            == 401
        )
    r = client.patch("/member/password", {"current_password": PASSWORD, "new_password": "An0ther-Pass!"}, format="json")
    assert r.status_code == 429 and int(r["Retry-After"]) > 0

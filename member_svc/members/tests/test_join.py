"""Joining: only with a verified address, password rules, one member per address, MemberJoined."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import EmailVerification, Member
from members.tests.conftest import PASSWORD
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db

EMAIL = "cy@example.com"


def join(client, **overrides):
    body = {"email": EMAIL, "password": PASSWORD, "name": "Cy", "phone": "010-1", "address": "Busan", **overrides}
    return client.post("/member/join", body, format="json")


def test_join_with_a_verified_address_creates_the_member_and_announces_it(anon_client, verify_email):
    verify_email(EMAIL)
    r = join(anon_client)
    assert r.status_code == 201
    member = Member.objects.get(email=EMAIL)
    assert r.json() == {"member_id": member.pk, "email": EMAIL, "name": "Cy"}
    assert member.password.startswith("argon2$") and member.check_password(PASSWORD)
    assert (member.phone, member.address, member.role) == ("010-1", "Busan", "MEMBER")
    event = OutboxEvent.objects.get(event_type="MemberJoined")
    assert (event.topic, event.aggregate_type, event.aggregate_id) == ("members", "member", str(member.pk))
    assert event.payload["member_id"] == member.pk and event.payload["email"] == EMAIL


def test_production_settings_hash_with_argon2_first():
    from config import settings as production

    assert production.PASSWORD_HASHERS[0] == "members.hashers.ShopArgon2PasswordHasher"
    assert (production.ARGON2_MEMORY_KIB, production.ARGON2_TIME_COST, production.ARGON2_PARALLELISM) == (19456, 2, 1)


def test_a_hash_made_with_other_argon2_costs_verifies_and_is_upgraded_once(db, settings):
    from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, make_password

    old = Argon2PasswordHasher().encode(PASSWORD, Argon2PasswordHasher().salt())  # Django's own costs
    upgraded = []
    assert check_password(PASSWORD, old, setter=lambda raw: upgraded.append(make_password(raw)))
    assert len(upgraded) == 1 and "m=1024,t=1,p=1" in upgraded[0]  # this run's costs
    again = []
    assert check_password(PASSWORD, upgraded[0], setter=lambda raw: again.append(raw))
    assert again == []  # a hash with the current costs is not re-hashed


def test_join_without_verifying_is_refused(anon_client):
    r = join(anon_client)
    assert r.status_code == 400 and r.json()["error"]["code"] == "email_not_verified"
    assert not Member.objects.exists() and not OutboxEvent.objects.exists()


def test_a_sent_but_unverified_code_is_not_enough(anon_client):
    assert anon_client.post("/member/email/send", {"email": EMAIL}, format="json").status_code == 202
    assert join(anon_client).json()["error"]["code"] == "email_not_verified"


def test_a_verification_goes_stale(anon_client, verify_email):
    verify_email(EMAIL)
    EmailVerification.objects.update(verified_at=timezone.now() - timedelta(hours=2))
    assert join(anon_client).json()["error"]["code"] == "email_not_verified"


def test_a_verification_joins_once(anon_client, verify_email):
    verify_email(EMAIL)
    assert join(anon_client).status_code == 201
    Member.objects.all().delete()
    assert join(anon_client).json()["error"]["code"] == "email_not_verified"


def test_an_address_already_registered_is_409_email_taken(anon_client, verify_email, member):
    verify_email(member.email.upper())
    r = join(anon_client, email=member.email.upper())
    assert r.status_code == 409 and r.json()["error"]["code"] == "email_taken"
    assert Member.objects.count() == 1


@pytest.mark.parametrize("password", ["short1!", "12345678901", "password123", "cy@example.com"])
def test_weak_passwords_are_refused_naming_password(anon_client, verify_email, password):
    verify_email(EMAIL)
    r = join(anon_client, password=password)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "validation_error" and r.json()["error"]["fields"]["password"]
    assert not Member.objects.exists()
    assert join(anon_client).status_code == 201  # the verification was not used up


@pytest.mark.parametrize("missing", ["email", "password", "name"])
def test_missing_fields_are_named(anon_client, missing):
    body = {"email": EMAIL, "password": PASSWORD, "name": "Cy"}
    del body[missing]
    r = anon_client.post("/member/join", body, format="json")
    assert r.status_code == 400 and missing in r.json()["error"]["fields"]


def test_a_body_that_is_not_json_is_a_400_not_a_500(anon_client):
    r = anon_client.post("/member/join", "{not json", content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"

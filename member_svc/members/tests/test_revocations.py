"""PostgreSQL is the record of sessions: a Redis that lost the revocations gets them back from it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from members import services
from members.models import DeviceSession, Member
from members.tests.conftest import PASSWORD, claims_of
from shared import tokens
from shared.errors import TokenInvalid

pytestmark = pytest.mark.django_db


def _restore(internal_client):
    r = internal_client.post("/internal/sessions/revocations/restore")
    assert r.status_code == 200, r.content
    return r.json()


def test_a_logout_survives_a_redis_wipe(member, login, redis_db, internal_client):
    phone, laptop = login(member, "phone"), login(member, "laptop")
    services.logout(member_id=member.pk, session_id=claims_of(phone)["sid"])
    redis_db.flushdb()
    with pytest.raises(tokens.RevocationsLost):  # noticed, never "no key, so still logged in"
        tokens.verify_access_token(phone.access_token)
    assert _restore(internal_client) == {"sessions": 1, "members": 0}
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(phone.access_token)
    assert tokens.verify_access_token(laptop.access_token)


def test_a_logout_everywhere_survives_a_redis_wipe(member, login, redis_db, internal_client):
    phone = login(member, "phone")
    services.end_all_sessions(member_id=member.pk)
    time.sleep(0.002)
    later = login(member, "tablet")
    redis_db.flushdb()
    _restore(internal_client)
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(phone.access_token)
    assert tokens.verify_access_token(later.access_token)
    cut = int(redis_db.get(f"auth:member:{member.pk}:not_before"))
    assert cut == int(Member.objects.get(pk=member.pk).tokens_not_before.timestamp() * 1000)


def test_revocations_older_than_any_live_access_token_are_not_restored(member, login, redis_db, internal_client):
    old = login(member, "old")
    services.logout(member_id=member.pk, session_id=claims_of(old)["sid"])
    long_ago = timezone.now() - timedelta(seconds=settings.JWT_ACCESS_TTL_SECONDS + 61)
    DeviceSession.objects.update(revoked_at=long_ago)
    Member.objects.update(tokens_not_before=long_ago)
    redis_db.flushdb()
    assert _restore(internal_client) == {"sessions": 0, "members": 0}


def test_a_password_change_survives_a_redis_wipe(member, login, redis_db, internal_client, anon_client):
    phone, laptop = login(member, "phone"), login(member, "laptop")
    services.change_password(
        member_id=member.pk,
        session_id=claims_of(phone)["sid"],
        current_password=PASSWORD,
        new_password="Another-Pass-2026!",
    )
    redis_db.flushdb()
    _restore(internal_client)
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(laptop.access_token)
    assert tokens.verify_access_token(phone.access_token)


def test_restoring_is_internal_only(anon_client):
    assert anon_client.post("/internal/sessions/revocations/restore").status_code == 404

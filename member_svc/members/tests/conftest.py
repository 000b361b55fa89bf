"""Helpers for the member service's tests: mailed codes, members, logged-in devices."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from members import services
from members.models import Member

PASSWORD = "Drop-Shop-2026!"


def mailed_code(email: str) -> str:
    """The newest code mailed to ``email`` (locmem backend)."""
    for message in reversed(mail.outbox):
        if email in message.to:
            match = re.search(r"^Your code: (\d{6})$", message.body, re.M)
            assert match, message.body
            return match.group(1)
    raise AssertionError(f"no mail to {email}")


@pytest.fixture(autouse=True)
def _clean_redis(redis_db):
    """Rate limits, cooldowns and revocations live in Redis: every test starts from none,
    with Redis holding every revocation there is (none yet)."""
    from shared import tokens

    tokens.restore_revocations(sessions=[], members=[])
    return redis_db


@pytest.fixture
def verify_email(anon_client):
    def verify(email: str) -> None:
        assert anon_client.post("/member/email/send", {"email": email}, format="json").status_code == 202
        r = anon_client.post(
            "/member/email/verify", {"email": email, "code": mailed_code(email.lower())}, format="json"
        )
        assert r.status_code == 200, r.content

    return verify


@pytest.fixture
def member(db) -> Member:
    return Member.objects.create_user("ada@example.com", PASSWORD, name="Ada", phone="010-1234", address="Seoul")


@pytest.fixture
def login():
    def do(member: Member, device_name: str = "phone") -> services.TokenPair:
        return services.login(email=member.email, password=PASSWORD, device_name=device_name, ip="10.0.0.1")

    return do


def claims_of(pair: services.TokenPair) -> dict:
    from shared import tokens

    return tokens.decode_access_token(pair.access_token)

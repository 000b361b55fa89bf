"""E-mail codes: mailed, hashed, expiring, with a resend cooldown, rate limits and limited tries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from members.models import EmailVerification
from members.tests.conftest import mailed_code

pytestmark = pytest.mark.django_db


def send(client, email="bo@example.com", **extra):
    return client.post("/member/email/send", {"email": email}, format="json", **extra)


def verify(client, code, email="bo@example.com"):
    return client.post("/member/email/verify", {"email": email, "code": code}, format="json")


def test_send_mails_a_six_digit_code_and_keeps_only_its_hash(anon_client):
    r = send(anon_client, "Bo@Example.com")
    assert r.status_code == 202
    assert r.json() == {"email": "bo@example.com", "expires_in": 600}
    code = mailed_code("bo@example.com")
    row = EmailVerification.objects.get()
    assert row.email == "bo@example.com" and code not in row.code_hash and len(row.code_hash) == 64
    assert timedelta(seconds=590) < row.expires_at - timezone.now() <= timedelta(seconds=600)


def test_send_without_email_or_with_a_bad_one_names_the_field(anon_client):
    for body in ({}, {"email": "not-an-address"}):
        r = anon_client.post("/member/email/send", body, format="json")
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "validation_error"
        assert "email" in r.json()["error"]["fields"]
    assert mail.outbox == []


def test_resend_within_the_cooldown_is_refused_with_retry_after(anon_client):
    assert send(anon_client).status_code == 202
    r = send(anon_client)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r["Retry-After"]) <= 60
    assert len(mail.outbox) == 1


@override_settings(EMAIL_SEND_COOLDOWN_SECONDS=0)
def test_sends_per_address_are_limited(anon_client):
    for _ in range(5):
        assert send(anon_client).status_code == 202
    r = send(anon_client)
    assert r.status_code == 429 and int(r["Retry-After"]) > 0
    assert len(mail.outbox) == 5


@override_settings(
    EMAIL_SEND_COOLDOWN_SECONDS=0, RATE_LIMITS={"email_send_address": (100, 3600), "email_send_ip": (3, 600)}
)
def test_sends_per_client_ip_are_limited_and_the_ip_is_the_gateways_not_the_clients(internal_client):
    for i in range(3):
        assert send(internal_client, f"x{i}@example.com", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 202
    assert send(internal_client, "y@example.com", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    assert send(internal_client, "z@example.com", HTTP_X_FORWARDED_FOR="203.0.113.10").status_code == 202


@override_settings(
    EMAIL_SEND_COOLDOWN_SECONDS=0, RATE_LIMITS={"email_send_address": (100, 3600), "email_send_ip": (2, 600)}
)
def test_a_client_cannot_dodge_the_ip_limit_with_its_own_forwarded_for(anon_client):
    for i in range(2):
        assert send(anon_client, f"x{i}@example.com", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code == 202
    assert send(anon_client, "y@example.com", HTTP_X_FORWARDED_FOR="198.51.100.77").status_code == 429


def test_the_right_code_verifies(anon_client):
    send(anon_client)
    r = verify(anon_client, mailed_code("bo@example.com"))
    assert r.status_code == 200 and r.json() == {"email": "bo@example.com", "verified": True}
    assert EmailVerification.objects.get().verified_at is not None


def test_a_wrong_code_is_refused_naming_the_code(anon_client):
    send(anon_client)
    right = mailed_code("bo@example.com")
    r = verify(anon_client, "000000" if right != "000000" else "111111")
    assert r.status_code == 400 and "code" in r.json()["error"]["fields"]
    assert EmailVerification.objects.get().verified_at is None


def test_a_code_that_is_not_six_digits_names_the_field(anon_client):
    r = verify(anon_client, "12ab")
    assert r.status_code == 400 and "code" in r.json()["error"]["fields"]


def test_after_five_wrong_tries_even_the_right_code_is_dead(anon_client):
    send(anon_client)
    right = mailed_code("bo@example.com")
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        assert verify(anon_client, wrong).status_code == 400
    r = verify(anon_client, right)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited" and int(r["Retry-After"]) >= 1
    assert EmailVerification.objects.get().verified_at is None


def test_an_expired_code_is_refused(anon_client):
    send(anon_client)
    EmailVerification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    r = verify(anon_client, mailed_code("bo@example.com"))
    assert r.status_code == 400 and "expired" in r.json()["error"]["fields"]["code"][0]


@override_settings(EMAIL_SEND_COOLDOWN_SECONDS=0)
def test_a_new_code_replaces_the_old_one(anon_client):
    send(anon_client)
    old = mailed_code("bo@example.com")
    send(anon_client)
    new = mailed_code("bo@example.com")
    if old != new:
        assert verify(anon_client, old).status_code == 400
    assert verify(anon_client, new).status_code == 200


def test_verify_without_any_code_sent_is_a_clear_400(anon_client):
    r = verify(anon_client, "123456", email="never@example.com")
    assert r.status_code == 400 and "code" in r.json()["error"]["fields"]


def test_smtp_failure_keeps_no_code_and_no_cooldown(anon_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 1
    r = send(anon_client)
    assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_unavailable"
    assert not EmailVerification.objects.exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert send(anon_client).status_code == 202

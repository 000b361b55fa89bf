"""Login, refresh rotation with reuse detection, logout of one device and of all."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from members import services
from members.models import DeviceSession, RefreshToken
from members.tests.conftest import PASSWORD, claims_of
from shared import tokens
from shared.errors import TokenInvalid

pytestmark = pytest.mark.django_db


def login(client, email="ada@example.com", password=PASSWORD, **extra):
    return client.post(
        "/member/login", {"email": email, "password": password, "device_name": "laptop"}, format="json", **extra
    )


def refresh(client, token):
    return client.get("/member/refresh", HTTP_REFRESH_TOKEN=token)


def test_login_answers_the_spec_shape_and_opens_a_device_session(anon_client, member):
    r = login(anon_client, email="ADA@example.com", HTTP_USER_AGENT="Firefox")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "member_id"}
    assert body["token_type"] == "Bearer" and body["member_id"] == member.pk and body["expires_in"] == 300
    claims = tokens.verify_access_token(body["access_token"])
    session = DeviceSession.objects.get()
    assert claims["sub"] == str(member.pk) and claims["sid"] == session.sid
    assert (session.device_name, session.user_agent) == ("laptop", "Firefox")
    assert RefreshToken.objects.get().token_hash != body["refresh_token"]


def test_wrong_password_and_unknown_address_are_the_same_401(anon_client, member):
    for email, password in (("ada@example.com", "wrong-password"), ("nobody@example.com", PASSWORD)):
        r = login(anon_client, email=email, password=password)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    assert not DeviceSession.objects.exists()


def test_a_deactivated_member_cannot_log_in(anon_client, member):
    member.is_active = False
    member.save()
    assert login(anon_client).status_code == 401


def test_missing_login_fields_are_named(anon_client):
    r = anon_client.post("/member/login", {"email": "ada@example.com"}, format="json")
    assert r.status_code == 400 and "password" in r.json()["error"]["fields"]


def test_repeated_failed_logins_are_rate_limited_even_with_the_right_password(anon_client, member):
    for _ in range(10):
        assert login(anon_client, password="wrong-password").status_code == 401
    r = login(anon_client)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited" and int(r["Retry-After"]) > 0


def test_a_success_clears_the_failures_of_that_account(anon_client, member):
    for _ in range(9):
        login(anon_client, password="wrong-password")
    assert login(anon_client).status_code == 200
    for _ in range(9):
        assert login(anon_client, password="wrong-password").status_code == 401


def test_refresh_rotates_and_the_new_pair_works(anon_client, member):
    first = login(anon_client).json()
    r = refresh(anon_client, first["refresh_token"])
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and second["member_id"] == member.pk
    assert (
        tokens.verify_access_token(second["access_token"])["sid"]
        == tokens.decode_access_token(first["access_token"])["sid"]
    )
    assert refresh(anon_client, second["refresh_token"]).status_code == 200
    assert DeviceSession.objects.get().rotations == 2


def test_reusing_a_rotated_refresh_token_ends_that_device_only(anon_client, member, login):
    phone = login(member, "phone")
    laptop = login(member, "laptop")
    rotated = refresh(anon_client, phone.refresh_token).json()
    _past_the_grace_window()
    r = refresh(anon_client, phone.refresh_token)  # a copy of the old token comes back
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_reused"
    # The whole phone session is over: the thief's and the owner's newest tokens alike.
    assert refresh(anon_client, rotated["refresh_token"]).json()["error"]["code"] == "token_invalid"
    for access in (phone.access_token, rotated["access_token"]):
        with pytest.raises(TokenInvalid):
            tokens.verify_access_token(access)
    assert DeviceSession.objects.get(sid=claims_of(phone)["sid"]).revoked_reason == "token_reused"
    # The laptop is untouched.
    assert tokens.verify_access_token(laptop.access_token)
    assert refresh(anon_client, laptop.refresh_token).status_code == 200


def _past_the_grace_window() -> None:
    """Date every rotation back beyond the grace window, as if the copy came back later."""
    ago = timezone.now() - timedelta(seconds=settings.REFRESH_REUSE_GRACE_SECONDS + 1)
    RefreshToken.objects.filter(rotated_at__isnull=False).update(rotated_at=ago)


def test_refresh_without_header_or_with_garbage_is_401(anon_client, member):
    r = anon_client.get("/member/refresh")
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    for garbage in ("nope", "x" * 500):
        r = refresh(anon_client, garbage)
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid"


def test_an_expired_refresh_token_is_refused(anon_client, member, login):
    pair = login(member)
    DeviceSession.objects.update(refresh_expires_at=timezone.now() - timedelta(seconds=1))
    r = refresh(anon_client, pair.refresh_token)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid"


def test_logout_ends_this_device_at_once_and_not_the_others(member_client, anon_client, member, login):
    phone, laptop = login(member, "phone"), login(member, "laptop")
    r = member_client(member.pk, claims_of(phone)["sid"]).delete("/member/logout")
    assert r.status_code == 204
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(phone.access_token)
    assert refresh(anon_client, phone.refresh_token).json()["error"]["code"] == "token_invalid"
    assert tokens.verify_access_token(laptop.access_token)
    assert refresh(anon_client, laptop.refresh_token).status_code == 200


def test_logout_cannot_end_someone_elses_session(member_client, member, login):
    from members.models import Member

    other = Member.objects.create_user("eve@example.com", PASSWORD, name="Eve")
    pair = login(member)
    assert member_client(other.pk, claims_of(pair)["sid"]).delete("/member/logout").status_code == 204
    assert DeviceSession.objects.get().revoked_at is None


def test_logout_all_ends_every_device_at_once(member_client, anon_client, member, login):
    phone, laptop = login(member, "phone"), login(member, "laptop")
    r = member_client(member.pk, claims_of(phone)["sid"]).delete("/member/logout/all")
    assert r.status_code == 204
    for pair in (phone, laptop):
        with pytest.raises(TokenInvalid):
            tokens.verify_access_token(pair.access_token)
        assert refresh(anon_client, pair.refresh_token).status_code == 401
    assert not DeviceSession.objects.filter(revoked_at__isnull=True).exists()
    # A new login afterwards works.
    assert tokens.verify_access_token(services.login(email=member.email, password=PASSWORD).access_token)


def test_member_routes_need_the_gateways_identity(anon_client, member):
    for method, path in (
        ("get", "/member/mypage"),
        ("put", "/member/mypage"),
        ("patch", "/member/password"),
        ("delete", "/member/logout"),
        ("delete", "/member/logout/all"),
    ):
        r = getattr(anon_client, method)(path, HTTP_X_MEMBER_ID=str(member.pk))
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db(transaction=True)
def test_parallel_refreshes_with_one_token_all_get_the_same_successor(member, login):
    """Two tabs refreshing at once: within the grace window a rotated token gets its successor again."""
    pair = login(member)
    start = threading.Barrier(10)
    answers: list[object] = []

    def refresh_once():
        start.wait()
        try:
            answers.append(services.refresh_session(refresh_token=pair.refresh_token))
        except TokenInvalid as exc:
            answers.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresh_once) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(a, services.TokenPair) for a in answers), answers
    assert len({a.refresh_token for a in answers}) == 1
    session = DeviceSession.objects.get()
    assert session.revoked_at is None and session.rotations == 1
    for a in answers:
        assert tokens.verify_access_token(a.access_token)["sid"] == session.sid
    # The successor goes on rotating as usual.
    assert services.refresh_session(refresh_token=answers[0].refresh_token).refresh_token != answers[0].refresh_token


def test_a_rotated_token_within_the_grace_window_gets_the_same_successor(anon_client, member, login, settings):
    settings.REFRESH_REUSE_GRACE_SECONDS = 10
    pair = login(member)
    first = refresh(anon_client, pair.refresh_token).json()
    again = refresh(anon_client, pair.refresh_token)
    assert again.status_code == 200 and again.json()["refresh_token"] == first["refresh_token"]
    assert DeviceSession.objects.get().revoked_at is None


def test_a_rotated_token_after_the_grace_window_ends_the_session(anon_client, member, login, settings):
    settings.REFRESH_REUSE_GRACE_SECONDS = 10
    pair = login(member)
    first = refresh(anon_client, pair.refresh_token).json()
    _past_the_grace_window()
    r = refresh(anon_client, pair.refresh_token)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_reused"
    assert refresh(anon_client, first["refresh_token"]).status_code == 401
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(first["access_token"])

"""Access tokens: forged, expired, alg=none and revoked tokens never pass."""

import base64
import json
import time

import jwt
import pytest
from django.test import override_settings

from shared import tokens
from shared.errors import TokenInvalid


@pytest.fixture(autouse=True)
def revocations_complete(redis_db):
    """Redis holds every revocation there is (none): as after the member service restored them."""
    tokens.restore_revocations(sessions=[], members=[])
    return redis_db


def test_issued_token_verifies(redis_db):
    token, ttl = tokens.issue_access_token(member_id=7, session_id="s1")
    claims = tokens.verify_access_token(token)
    assert claims["sub"] == "7" and claims["sid"] == "s1" and ttl > 0


def test_expired_token_is_refused(redis_db):
    token, _ = tokens.issue_access_token(member_id=7, session_id="s1", now=time.time() - 3600)
    with pytest.raises(TokenInvalid, match="expired"):
        tokens.verify_access_token(token)


def test_token_signed_with_another_key_is_refused(redis_db):
    token, _ = tokens.issue_access_token(member_id=7, session_id="s1")
    with override_settings(JWT_SIGNING_KEY="another-key"), pytest.raises(TokenInvalid):
        tokens.verify_access_token(token)


def test_alg_none_token_is_refused(redis_db):
    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'sub': '7', 'sid': 's', 'iat': now, 'exp': now + 60, 'type': 'access'})}."
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(forged)


def test_tampered_payload_is_refused(redis_db):
    token, _ = tokens.issue_access_token(member_id=7, session_id="s1")
    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "8"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(f"{header}.{forged_payload}.{sig}")


def test_refresh_shaped_token_is_not_an_access_token(redis_db, settings):
    now = int(time.time())
    other = jwt.encode(
        {"sub": "7", "sid": "s", "iat": now, "exp": now + 60, "type": "refresh"},
        settings.JWT_SIGNING_KEY,
        algorithm="HS256",
    )
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(other)


def test_logout_of_one_session_kills_only_its_tokens(redis_db):
    a, _ = tokens.issue_access_token(member_id=7, session_id="phone")
    b, _ = tokens.issue_access_token(member_id=7, session_id="laptop")
    tokens.revoke_session("phone")
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(a)
    assert tokens.verify_access_token(b)["sid"] == "laptop"


def test_logout_all_kills_every_issued_token_but_not_later_ones(redis_db):
    a, _ = tokens.issue_access_token(member_id=7, session_id="phone", now=time.time() - 1)
    tokens.revoke_all_sessions(7)
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(a)
    time.sleep(0.002)
    fresh, _ = tokens.issue_access_token(member_id=7, session_id="tablet")
    assert tokens.verify_access_token(fresh)["sid"] == "tablet"


def test_a_checked_token_still_expires(redis_db, monkeypatch):
    token, _ = tokens.issue_access_token(member_id=7, session_id="s1")
    claims = tokens.verify_access_token(token)  # checked once, remembered
    monkeypatch.setattr(tokens.time, "time", lambda: claims["exp"] + 1)
    with pytest.raises(TokenInvalid, match="expired"):
        tokens.verify_access_token(token)


def test_a_checked_token_is_still_refused_after_logout(redis_db):
    token, _ = tokens.issue_access_token(member_id=7, session_id="s9")
    tokens.verify_access_token(token)
    tokens.revoke_session("s9")
    with pytest.raises(TokenInvalid):
        tokens.verify_access_token(token)


def test_a_revocation_store_that_lost_its_data_is_noticed_not_trusted(redis_db):
    token, _ = tokens.issue_access_token(member_id=7, session_id="s1")
    tokens.revoke_session("s1")
    redis_db.flushdb()  # Redis restarted empty, or was wiped: the logout is forgotten
    with pytest.raises(tokens.RevocationsLost):
        tokens.verify_access_token(token)


def test_restored_revocations_refuse_ended_sessions_again(redis_db):
    ended, _ = tokens.issue_access_token(member_id=7, session_id="phone")
    logged_out_all, _ = tokens.issue_access_token(member_id=8, session_id="tablet", now=time.time() - 1)
    live, _ = tokens.issue_access_token(member_id=7, session_id="laptop")
    redis_db.flushdb()
    tokens.restore_revocations(sessions=[("phone", 60)], members=[(8, int(time.time() * 1000), 60)])
    for token in (ended, logged_out_all):
        with pytest.raises(TokenInvalid):
            tokens.verify_access_token(token)
    assert tokens.verify_access_token(live)["sid"] == "laptop"
    assert 0 < redis_db.ttl("auth:sid:phone:revoked") <= 60


def test_checking_a_token_is_one_redis_round_trip(redis_db, monkeypatch):
    token, _ = tokens.issue_access_token(member_id=7, session_id="s1")
    client = tokens.get_redis()
    commands = []
    real = client.execute_command
    monkeypatch.setattr(client, "execute_command", lambda *args, **kw: commands.append(args[0]) or real(*args, **kw))
    tokens.verify_access_token(token)
    assert commands == ["MGET"]

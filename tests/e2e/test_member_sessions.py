"""A member through the gateway only: join with an e-mail code, two devices, refresh, log out one, then all."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.e2e.conftest import PASSWORD, read_mail_code, unique_email

# The stack's REFRESH_REUSE_GRACE_SECONDS (the member service's default unless the test command says).
REFRESH_GRACE_SECONDS = float(os.environ.get("E2E_REFRESH_GRACE_SECONDS", "5"))


def test_join_two_devices_refresh_logout_one_then_all(gw, join_member, login):
    member = join_member(name="Two Devices")
    phone, laptop = login(member, "phone"), login(member, "laptop")
    assert phone["token_type"] == "Bearer" and phone["member_id"] == member["member_id"]

    me = gw.get("/member/mypage", token=phone["access_token"])
    assert me.status_code == 200 and me.json()["email"] == member["email"]

    r = gw.get("/member/refresh", headers={"Refresh-Token": phone["refresh_token"]})
    assert r.status_code == 200
    phone2 = r.json()
    assert phone2["refresh_token"] != phone["refresh_token"]
    assert gw.get("/member/mypage", token=phone2["access_token"]).status_code == 200

    # Log out the laptop: its token is refused at once, the phone goes on.
    assert gw.delete("/member/logout", token=laptop["access_token"]).status_code == 204
    r = gw.get("/member/mypage", token=laptop["access_token"])
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid"
    assert gw.get("/member/refresh", headers={"Refresh-Token": laptop["refresh_token"]}).status_code == 401
    assert gw.get("/member/mypage", token=phone2["access_token"]).status_code == 200

    # Log out everywhere: every token issued so far is refused.
    tablet = login(member, "tablet")
    assert gw.delete("/member/logout/all", token=phone2["access_token"]).status_code == 204
    for tokens in (phone2, tablet):
        assert gw.get("/member/mypage", token=tokens["access_token"]).status_code == 401
        assert gw.get("/member/refresh", headers={"Refresh-Token": tokens["refresh_token"]}).status_code == 401
    time.sleep(0.01)  # a login after logout-all is a new millisecond
    assert gw.get("/member/mypage", token=login(member, "phone")["access_token"]).status_code == 200


def test_a_reused_refresh_token_ends_that_device(gw, join_member, login):
    member = join_member()
    first = login(member)
    rotated = gw.get("/member/refresh", headers={"Refresh-Token": first["refresh_token"]}).json()
    time.sleep(REFRESH_GRACE_SECONDS + 0.5)  # a copy that comes back after the grace window
    r = gw.get("/member/refresh", headers={"Refresh-Token": first["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_reused"
    assert gw.get("/member/mypage", token=rotated["access_token"]).status_code == 401


def test_parallel_refreshes_with_one_token_keep_the_device_logged_in(gw, join_member, login):
    """Two browser tabs refreshing at once: every one gets the same successor, nobody is logged out."""
    first = login(join_member())
    start = threading.Barrier(10)

    def refresh(_):
        start.wait()
        return requests.get(f"{gw.base}/member/refresh", headers={"Refresh-Token": first["refresh_token"]}, timeout=15)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(refresh, range(10)))
    assert [r.status_code for r in answers] == [200] * 10, [r.text for r in answers]
    assert len({r.json()["refresh_token"] for r in answers}) == 1
    for r in answers:
        assert gw.get("/member/mypage", token=r.json()["access_token"]).status_code == 200
    r = gw.get("/member/refresh", headers={"Refresh-Token": answers[0].json()["refresh_token"]})
    assert r.status_code == 200


def test_a_forged_member_id_header_changes_nothing(gw, join_member, login):
    alice, bob = join_member(name="Alice"), join_member(name="Bob")
    token = login(alice)["access_token"]
    r = gw.get(
        "/member/mypage", token=token, headers={"X-Member-Id": str(bob["member_id"]), "X-Internal-Token": "guess"}
    )
    assert r.status_code == 200 and r.json()["member_id"] == alice["member_id"]
    r = gw.get("/member/mypage", headers={"X-Member-Id": str(bob["member_id"])})
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"


def test_profile_and_password_through_the_gateway(gw, join_member, login):
    member = join_member()
    phone, laptop = login(member, "phone"), login(member, "laptop")
    r = gw.put(
        "/member/mypage",
        token=phone["access_token"],
        json={"name": "New Name", "phone": "010-0000", "address": "Seoul", "email": "x@example.com"},
    )
    assert r.status_code == 200 and r.json()["name"] == "New Name" and r.json()["email"] == member["email"]
    r = gw.patch(
        "/member/password",
        token=phone["access_token"],
        json={"current_password": "wrong", "new_password": "Fresh-Pass-2026!"},
    )
    assert r.status_code == 401
    r = gw.patch(
        "/member/password",
        token=phone["access_token"],
        json={"current_password": PASSWORD, "new_password": "Fresh-Pass-2026!"},
    )
    assert r.status_code == 204
    assert gw.get("/member/mypage", token=laptop["access_token"]).status_code == 401
    assert gw.get("/member/mypage", token=phone["access_token"]).status_code == 200
    r = gw.post("/member/login", json={"email": member["email"], "password": "Fresh-Pass-2026!"})
    assert r.status_code == 200


def test_join_errors_through_the_gateway(gw, join_member):
    r = gw.post("/member/join", json={"email": unique_email(), "password": PASSWORD, "name": "X"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "email_not_verified"
    taken = join_member()
    started = time.time() - 1
    assert gw.post("/member/email/send", json={"email": taken["email"]}).status_code == 202
    code = read_mail_code(taken["email"], after=started)
    assert gw.post("/member/email/verify", json={"email": taken["email"], "code": code}).status_code == 200
    r = gw.post("/member/join", json={"email": taken["email"], "password": PASSWORD, "name": "Again"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "email_taken"
    r = gw.post("/member/login", json={"email": taken["email"]})
    assert r.status_code == 400 and "password" in r.json()["error"]["fields"]


def test_the_public_api_docs_leave_internal_routes_out(gw):
    doc = gw.get("/api/schema").json()
    assert "/member/login" in doc["paths"] and "/cloth/inventory" not in doc["paths"]
    assert gw.get("/docs").status_code == 200

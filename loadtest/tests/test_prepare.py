"""The member cache of the load tests (the member service's calls replaced: no stack needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import prepare  # noqa: E402


@pytest.fixture
def service(tmp_path, monkeypatch):
    """A member service that knows ``alive`` e-mails; joining adds one."""
    (tmp_path / "loadtest").mkdir()
    monkeypatch.setattr(prepare, "ROOT", tmp_path)
    alive: set[str] = set()

    def fresh_tokens(api, member):
        if member["email"] not in alive:
            return None
        return {**member, "access_token": "a-" + member["email"], "refresh_token": "r", "tokens_at": 1e12}

    def join(api, mail, email):
        alive.add(email)

    def login(api, email, password, device):
        return {"member_id": len(alive), "access_token": "a-" + email, "refresh_token": "r"}

    monkeypatch.setattr(prepare, "_fresh_tokens", fresh_tokens)
    monkeypatch.setattr(prepare, "_join", join)
    monkeypatch.setattr(prepare, "_login", login)
    stack = SimpleNamespace(name="unit", mail_dir=tmp_path / "mail")
    return stack, alive, tmp_path / "loadtest" / ".members-unit.json"


def _cache(path: Path, emails: list[str]) -> None:
    members = [{"email": e, "password": "p", "device": "loadtest", "refresh_token": "r"} for e in emails]
    path.write_text(json.dumps({"members": members}))


def _prepare(stack, wanted: int) -> list[str]:
    return [m["email"] for m in prepare.prepare_members(stack, "http://127.0.0.1:9", wanted, log=lambda _: None)]


def test_after_the_databases_were_reset_two_preparations_give_the_same_members(service):
    stack, alive, path = service
    _cache(path, [f"gone-{i}@x" for i in range(40)])  # members of databases that no longer exist
    first = _prepare(stack, 4)
    assert not any(e.startswith("gone-") for e in first) and len(set(first)) == 4
    again = _prepare(stack, 4)  # the next class of the same run: the same members, from the cache
    assert sorted(again) == sorted(first)
    assert sorted(m["email"] for m in json.loads(path.read_text())["members"]) == sorted(first)


def test_a_member_gone_among_living_ones_is_dropped_and_the_rest_kept(service):
    stack, alive, path = service
    alive.update({"a@x", "b@x", "c@x"})
    _cache(path, ["a@x", "gone@x", "b@x", "c@x"])
    ready = _prepare(stack, 2)
    assert len(ready) == 2 and ready[0] == "a@x" and not {"a@x", "gone@x"} & set(ready[1:])
    cached = [m["email"] for m in json.loads(path.read_text())["members"]]
    assert "gone@x" not in cached and {"b@x", "c@x"} <= set(cached)


def test_a_login_limit_stops_the_preparation_with_what_to_do_not_a_traceback(service, monkeypatch):
    stack, alive, _ = service

    def join(api, mail, email):
        if len(alive) >= 3:
            raise prepare.RateLimitedError("mail")  # the limit on mailed codes
        alive.add(email)

    logins = []

    def login(api, email, password, device):
        logins.append(device)
        if device != "loadtest":
            raise prepare.RateLimitedError("login")  # extra devices meet the login limit
        return {"member_id": len(alive), "access_token": "a-" + email, "refresh_token": "r"}

    monkeypatch.setattr(prepare, "_join", join)
    monkeypatch.setattr(prepare, "_login", login)
    with pytest.raises(SystemExit) as stopped:
        _prepare(stack, 10)
    assert "RATE_LIMIT_SCALE=1000" in str(stopped.value) and "log in" in str(stopped.value)
    assert str(stopped.value).startswith("3 of 10 members ready: ")  # how far it got
    assert any(device != "loadtest" for device in logins)  # it did try the extra devices


def test_a_refused_login_is_told_apart_from_other_failures():
    def api(status):
        return SimpleNamespace(call=lambda *a, **k: SimpleNamespace(status_code=status, text="{}"))

    with pytest.raises(prepare.RateLimitedError):
        prepare._login(api(429), "a@x", "p", "d")
    with pytest.raises(RuntimeError) as other:
        prepare._login(api(500), "a@x", "p", "d")
    assert not isinstance(other.value, prepare.RateLimitedError)


def test_cached_members_refused_a_new_login_stop_the_preparation_with_what_to_do(service, monkeypatch):
    stack, _, path = service
    _cache(path, ["a@x", "b@x"])

    def fresh_tokens(api, member):
        raise prepare.RateLimitedError("login")  # the refresh token no longer works, and logging in is refused

    monkeypatch.setattr(prepare, "_fresh_tokens", fresh_tokens)
    with pytest.raises(SystemExit) as stopped:
        _prepare(stack, 2)
    assert "RATE_LIMIT_SCALE=1000" in str(stopped.value)
    assert str(stopped.value).startswith("0 of 2 members ready: ")


def test_tokens_refreshed_at_the_end_and_refused_stop_the_preparation_with_what_to_do(service, monkeypatch):
    stack, _, _ = service

    def fresh_tokens(api, member):
        raise prepare.RateLimitedError("login")

    monkeypatch.setattr(prepare, "_fresh_tokens", fresh_tokens)
    monkeypatch.setattr(prepare, "FRESH_SECONDS", -1)  # every token counts as old by the end
    with pytest.raises(SystemExit) as stopped:
        _prepare(stack, 2)
    assert "RATE_LIMIT_SCALE=1000" in str(stopped.value)

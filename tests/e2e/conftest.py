"""End-to-end fixtures: a running stack reached through its gateway only.

``python manage_all.py test`` brings up a throw-away stack and sets GATEWAY_URL and
MAIL_DIR (where the stack writes e-mails when no SMTP server is configured). Run by
hand against the dev stack with:
GATEWAY_URL=http://127.0.0.1:8000 MAIL_DIR=.run/dev/mail .venv/bin/pytest -c tests/pytest.ini tests/e2e
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000").rstrip("/")
MAIL_DIR = Path(os.environ.get("MAIL_DIR", Path(__file__).resolve().parents[2] / ".run" / "dev" / "mail"))
PASSWORD = "Drop-Shop-2026!"


#: The gateway's refusals: it did no work for the request and says when to come back.
REFUSALS = {(503, "overloaded"), (429, "rate_limited")}


class Gateway:
    """A tiny client for the public API: ``gw.post("/member/login", json=..., token=...)``.

    It speaks the API's protocol like a shop frontend: the gateway's ``overloaded`` and
    ``rate_limited`` refusals (nothing was done; e.g. a member's second order within the
    per-member window) are sent again after their ``Retry-After`` when that is a few
    seconds. ``polite=False`` hands every answer back as it came.
    """

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: dict | None = None,
        polite: bool = True,
        **kw: Any,
    ) -> requests.Response:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        kw.setdefault("timeout", 15)
        # Several threads of one member share its order window: one gets through per window, so
        # a thread may be refused a few times in a row; give up on refusals after a minute.
        deadline = time.monotonic() + 60
        while True:
            r = self.http.request(method, self.base + path, headers=h, **kw)
            wait = refusal_wait(r)
            if not polite or wait is None or wait > 10 or time.monotonic() + wait > deadline:
                return r
            time.sleep(wait)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)


@pytest.fixture(scope="session")
def gw() -> Gateway:
    gateway = Gateway(GATEWAY_URL)
    try:
        health = gateway.get("/health", timeout=5)
    except requests.ConnectionError:
        pytest.fail(
            f"no gateway at {GATEWAY_URL}: start the stack (python manage_all.py up) or run python manage_all.py test"
        )
    assert health.status_code == 200, health.text
    return gateway


def refusal_wait(r: requests.Response) -> int | None:
    """The Retry-After of a gateway refusal (overloaded, rate_limited), or None for any other answer."""
    try:
        code = r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    if (r.status_code, code) not in REFUSALS:
        return None
    return int(r.headers["Retry-After"])


def read_mail_code(email: str, *, timeout: float = 10.0, after: float = 0.0) -> str:
    """The newest 6-digit code mailed to ``email`` (from the stack's mail folder)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(
            (f for f in MAIL_DIR.glob("*") if f.stat().st_mtime >= after), key=lambda f: f.stat().st_mtime, reverse=True
        )
        for f in files:
            text = f.read_text(errors="replace")
            for message in text.split("\n" + "-" * 79 + "\n"):
                if re.search(rf"^To: {re.escape(email)}$", message, re.M):
                    match = re.search(r"Your code: (\d{6})", message)
                    if match:
                        return match.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no code mailed to {email} in {MAIL_DIR}")


def unique_email(tag: str = "buyer") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def join_member(gw: Gateway) -> Callable[..., dict[str, Any]]:
    """join_member() -> {email, password, member_id}: a member who verified the e-mail and joined."""

    def join(email: str | None = None, name: str = "Test Buyer") -> dict[str, Any]:
        email = email or unique_email()
        started = time.time() - 1
        r = gw.post("/member/email/send", json={"email": email})
        assert r.status_code == 202, r.text
        code = read_mail_code(email, after=started)
        r = gw.post("/member/email/verify", json={"email": email, "code": code})
        assert r.status_code == 200, r.text
        r = gw.post("/member/join", json={"email": email, "password": PASSWORD, "name": name})
        assert r.status_code == 201, r.text
        return {"email": email, "password": PASSWORD, "member_id": r.json()["member_id"]}

    return join


@pytest.fixture
def login(gw: Gateway) -> Callable[..., dict[str, Any]]:
    """login(member, device_name=...) -> the login answer (access_token, refresh_token, ...)."""

    def do(member: dict[str, Any], device_name: str = "phone") -> dict[str, Any]:
        r = gw.post(
            "/member/login", json={"email": member["email"], "password": member["password"], "device_name": device_name}
        )
        assert r.status_code == 200, r.text
        return r.json()

    return do


@pytest.fixture
def buyer(join_member, login) -> dict[str, Any]:
    """A member who joined and logged in once: {email, password, member_id, token, refresh_token}."""
    member = join_member()
    tokens = login(member)
    return {**member, "token": tokens["access_token"], "refresh_token": tokens["refresh_token"]}


def wait_for(check: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.25, what: str = "condition"):
    """Poll ``check`` until it returns something truthy (the saga settles asynchronously)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


ROOT = Path(__file__).resolve().parents[2]
STACK = os.environ.get("E2E_STACK", "dev")


def operator(service: str, *args: str, check: bool = True) -> str:
    """Run an operator command on the stack under test (python manage_all.py manage ...)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / "manage_all.py"), "--stack", STACK, "manage", service, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{service} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


@pytest.fixture
def create_drop() -> Callable[..., dict[str, Any]]:
    """create_drop(sizes="S:3,M:2", limit=1, starts_in=-1) -> the operator command's JSON."""
    import datetime as dt
    import json

    def make(
        *,
        sizes: str = "S:5,M:5",
        price: str = "59000",
        limit: int = 2,
        starts_in: float = -1.0,
        name: str | None = None,
    ) -> dict[str, Any]:
        starts = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=starts_in)).isoformat()
        out = operator(
            "catalog",
            "create_drop",
            "--name",
            name or f"Drop {uuid.uuid4().hex[:6]}",
            "--price",
            price,
            "--sizes",
            sizes,
            "--starts-at",
            starts,
            "--limit",
            str(limit),
        )
        return json.loads(out.strip().splitlines()[-1])

    return make


def supervise(*args: str) -> str:
    """supervisorctl on the stack under test: stop/start one of its own processes (fault tests)."""
    import subprocess

    conf = ROOT / ".run" / STACK / "supervisord.conf"
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "supervisorctl"), "-c", str(conf), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


def outbox(service: str) -> dict[str, Any]:
    import json

    return json.loads(operator(service, "outbox"))

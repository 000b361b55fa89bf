"""The public API against its own OpenAPI document: schemathesis through the gateway.

Every operation of ``/api/schema`` is called with inputs generated from the document
(examples, boundary values, valid and invalid data), once as a stranger and once as a
member with a token. A run fails on any 5xx, any answer whose status the document does
not list for that operation, and any body or content type that breaks the document.

The runs are bounded (``API_FUZZ_MAX_EXAMPLES`` cases per operation and phase, a fixed
seed, a hard time limit) and change state through the API only (orders, wishlists, mails,
rate-limit counters), so ``python manage_all.py test`` runs them after the end-to-end tests.
Run by hand against a running stack:
GATEWAY_URL=http://127.0.0.1:8000 MAIL_DIR=.run/dev/mail .venv/bin/pytest -c tests/pytest.ini tests/api
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from e2e.conftest import GATEWAY_URL, PASSWORD, Gateway, read_mail_code, unique_email

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
MAX_EXAMPLES = int(os.environ.get("API_FUZZ_MAX_EXAMPLES", "100"))
SEED = int(os.environ.get("API_FUZZ_SEED", "20261201"))
#: A run that has not ended by then is a failure: the bound the test command keeps.
TIME_LIMIT_SECONDS = int(os.environ.get("API_FUZZ_TIME_LIMIT_SECONDS", "240"))
#: Logging out (one device or all) ends the token the member run uses, so it comes after it, on its own.
LOGOUT = "^/member/logout"


def schemathesis(who: str, *options: str) -> None:
    """One schemathesis run against the gateway's document; fails the test with its report."""
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        f"{GATEWAY_URL}/api/schema",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
        *options,
    ]
    started = time.monotonic()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"schemathesis ran over {TIME_LIMIT_SECONDS} s:\n{exc.stdout or ''}")
    report = result.stdout + result.stderr
    print(f"schemathesis as {who}: {time.monotonic() - started:.0f} s\n{report[-3000:]}")
    assert result.returncode == 0, report


def _clear_rate_limits() -> None:
    """Forget the member service's rate-limit counts on the test stack (``manage_all.py test`` names its Redis)."""
    url = os.environ.get("E2E_REDIS_URL")
    if not url:
        return  # a stack run by hand: its counts are not ours to reset
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter("member:rl:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module", autouse=True)
def rate_limits_left_as_found():
    """The stranger's run asks for hundreds of codes and fails hundreds of logins from this address.

    Its counts would refuse (429) every join and login from here for the next ten minutes,
    the end-to-end tests' of a next run included; so they are reset before and after.
    """
    _clear_rate_limits()
    yield
    _clear_rate_limits()


@pytest.fixture(scope="module")
def member_token() -> str:
    """The access token of a member who joined and logged in through the gateway."""
    gw = Gateway(GATEWAY_URL)
    email = unique_email("fuzz")
    started = time.time() - 1
    assert gw.post("/member/email/send", json={"email": email}).status_code == 202
    code = read_mail_code(email, after=started)
    assert gw.post("/member/email/verify", json={"email": email, "code": code}).status_code == 200
    assert gw.post("/member/join", json={"email": email, "password": PASSWORD, "name": "Fuzz"}).status_code == 201
    r = gw.post("/member/login", json={"email": email, "password": PASSWORD, "device_name": "schemathesis"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_every_answer_to_a_member_is_documented_and_none_is_5xx(member_token):
    schemathesis("a member", "--header", f"Authorization: Bearer {member_token}", "--exclude-path-regex", LOGOUT)


def test_logging_out_answers_as_documented(member_token):
    schemathesis(
        "a member logging out", "--header", f"Authorization: Bearer {member_token}", "--include-path-regex", LOGOUT
    )


def test_every_answer_to_a_stranger_is_documented_and_none_is_5xx():
    schemathesis("a stranger")

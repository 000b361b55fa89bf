"""``manage_all.py test``: lint, every suite against real servers, then end to end and API fuzzing
through a throw-away stack."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from shared.topology import SERVICES

from .commands import cmd_down, cmd_up
from .console import say
from .prepare import check_servers, empty_stack_data
from .processes import supervisor
from .stacks import make_stack
from .venv import ROOT, VENV, VENV_PY


def _pytest(cwd: Path, env: dict[str, str], extra: list[str]) -> int:
    return subprocess.call([str(VENV_PY), "-m", "pytest", *extra], cwd=cwd, env=env)


def cmd_test(args: argparse.Namespace) -> int:
    """Every service's tests (real PostgreSQL, Redis, broker), then end-to-end through a running gateway."""
    stack = make_stack("e2e")
    check_servers(stack)
    # One test run at a time owns the e2e stack: a second would tear it down under the first.
    import fcntl  # noqa: PLC0415

    stack.dir.mkdir(parents=True, exist_ok=True)
    lock = open(stack.dir / "test.lock", "w")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another test run is using the e2e stack; waiting for it to finish ...")
        fcntl.flock(lock, fcntl.LOCK_EX)
    results: dict[str, int] = {}
    if supervisor(stack).pid() is not None:  # left up by `test --keep`
        cmd_down(args, stack)
    empty_stack_data(stack)
    say("bringing up the end-to-end stack (ports 18000-18005, its own empty databases, Redis database and broker) ...")
    if cmd_up(args, stack) != 0:
        say(f"the end-to-end stack did not come up healthy; logs in {stack.logs}")
        cmd_down(args, stack)
        return 1
    try:
        env = {**os.environ, "TEST_KAFKA_BOOTSTRAP_SERVERS": stack.kafka}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        # The API fuzzing comes last: it changes the stack's state (orders, rate-limit counters).
        selected = args.only or ["lint", "devstack", "shared", "gateway", *SERVICES, "loadtest", "e2e", "api"]
        if "lint" in selected:
            say("\n=== lint (ruff) ===")
            results["lint"] = subprocess.call([str(VENV / "bin" / "ruff"), "check", "."], cwd=ROOT)
        if "devstack" in selected:
            say("\n=== devstack tests (supervisor's configuration and control, the settings that reach the stack) ===")
            results["devstack"] = _pytest(
                ROOT, env, ["devstack/tests", "-q", "-p", "no:django", "-p", "no:cacheprovider", *args.pytest_args]
            )
        if "loadtest" in selected:
            say("\n=== loadtest tests (reports and plots from sample results, the cost benchmark's /proc parsing) ===")
            results["loadtest"] = _pytest(
                ROOT, env, ["loadtest/tests", "-q", "-p", "no:django", "-p", "no:cacheprovider", *args.pytest_args]
            )
        for target in selected:
            if target in ("e2e", "api", "lint", "devstack", "loadtest"):
                continue
            say(f"\n=== {target} tests ===")
            cwd = ROOT / ("member_svc" if target == "shared" else f"{target}_svc")
            paths = [str(ROOT / "shared" / "tests"), "-c", "pytest.ini"] if target == "shared" else []
            if target == "shared" and not (ROOT / "shared" / "tests").exists():
                continue
            results[target] = _pytest(cwd, env, [*paths, *args.pytest_args])
        e2e_env = {
            **env,
            "GATEWAY_URL": stack.url("gateway"),
            "MAIL_DIR": str(stack.mail_dir),
            "E2E_STACK": "e2e",
            **stack.service_urls(),
            "INTERNAL_API_SECRET": stack.secrets()["INTERNAL_API_SECRET"],
            "E2E_REDIS_URL": stack.redis_url,
            "E2E_REFRESH_GRACE_SECONDS": stack.extra_env["REFRESH_REUSE_GRACE_SECONDS"],
        }
        if "e2e" in selected:
            say("\n=== end-to-end tests (through the gateway) ===")
            results["e2e"] = _pytest(
                ROOT, e2e_env, ["tests/e2e", "-c", str(ROOT / "tests" / "pytest.ini"), *args.pytest_args]
            )
        if "api" in selected:
            say("\n=== API fuzzing (schemathesis against the gateway's OpenAPI document) ===")
            results["api"] = _pytest(
                ROOT, e2e_env, ["tests/api", "-c", str(ROOT / "tests" / "pytest.ini"), *args.pytest_args]
            )
    finally:
        if not args.keep:
            cmd_down(args, stack)
    say("\n=== summary ===")
    for name, code in results.items():
        say(f"  {name:<10} {'passed' if code == 0 else ('no tests' if code == 5 else 'FAILED')}")
    failed = [n for n, c in results.items() if c not in (0, 5)]
    return 1 if failed else 0

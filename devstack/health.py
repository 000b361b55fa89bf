"""Is a stack healthy: every web process's ``/health``, and the consumers joined."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from shared.topology import SERVICES, WEB

from .console import say
from .stacks import Stack


def fetch_json(url: str, timeout: float = 2.0) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except (OSError, ValueError):
        return 0, None


def wait_healthy(stack: Stack, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    pending = WEB
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if fetch_json(stack.url(s) + "/health")[0] != 200]
        if pending:
            time.sleep(0.5)
    if pending:
        say(f"  not healthy after {timeout:.0f}s: {', '.join(pending)} (see {stack.logs})")
        return False
    # The broker and the consumers: a service answers "degraded" until it reaches Kafka and
    # its consumer holds its partitions, so the first events after `up` are not held up.
    waiting: dict[str, dict] = {}
    while time.monotonic() < deadline:
        answers = {s: fetch_json(stack.url(s) + "/health")[1] or {} for s in SERVICES}
        waiting = {s: a.get("checks", {}) for s, a in answers.items() if a.get("status") != "ok"}
        if not waiting:
            return True
        time.sleep(0.5)
    late = ", ".join(f"{s} ({', '.join(f'{k} {v}' for k, v in c.items() if v != 'ok')})" for s, c in waiting.items())
    say(f"  services are up, but not all reach Kafka or have their consumer joined yet: {late}")
    return True

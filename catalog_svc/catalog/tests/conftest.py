"""Fixtures of the catalog tests: the inventory's answers faked at the HTTP boundary."""

from __future__ import annotations

import pytest

from shared import upstream
from shared.errors import UpstreamUnavailable


@pytest.fixture(autouse=True)
def _clean_cache(redis_db):
    from catalog.response_cache import forget_kept_copies

    forget_kept_copies()  # a test's Redis starts empty, so must the process's copies
    yield
    forget_kept_copies()


@pytest.fixture
def inventory_calls(monkeypatch):
    """Records the catalog's calls to the inventory; ``inventory_calls.down = True`` makes it unreachable."""

    class Calls(list):
        down = False

    calls = Calls()

    def fake_call_ok(service, method, path, **kw):
        if calls.down:
            raise UpstreamUnavailable(f"The {service} service is unavailable.")
        calls.append((service, method, path, kw.get("body")))
        return {"ok": True}

    monkeypatch.setattr(upstream, "call_ok", fake_call_ok)
    return calls

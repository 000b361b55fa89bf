"""Each service's WSGI module loads Django whole and freezes it out of the garbage collector's walks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.topology import WEB

ROOT = Path(__file__).resolve().parents[2]

#: Run in a fresh interpreter: what the web server's worker does when it loads the application.
_LOAD = """
import gc, json
import config.wsgi
from django.urls import get_resolver
patterns = get_resolver().url_patterns
tracked = {id(o) for o in gc.get_objects()}
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "patterns_frozen": id(patterns) not in tracked,
    "callable": callable(config.wsgi.application),
}))
"""


@pytest.mark.parametrize("service", WEB)
def test_the_loaded_application_with_its_views_is_frozen(service):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _LOAD],
        cwd=ROOT / f"{service}_svc",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["callable"]
    # Django, the settings and every view: tens of thousands of objects the collector no longer walks.
    assert loaded["frozen"] > 10_000
    assert loaded["patterns_frozen"], "the URL patterns were imported after the freeze"

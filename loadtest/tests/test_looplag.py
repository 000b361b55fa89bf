"""The load generator's loop lag: a loop kept busy shows as a late wake-up."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import gevent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))

import looplag  # noqa: E402


def test_a_loop_held_busy_is_seen_late_by_about_as_long():
    lag = looplag.LoopLag()
    lag.start()
    gevent.sleep(0.05)  # the watcher runs freely
    time.sleep(0.2)  # not gevent's: the whole loop is held, as by a busy process or a collection
    gevent.sleep(0.05)
    lag.stop()
    late = [seconds for _, seconds in lag.samples]
    assert len(late) >= 3
    assert max(late) >= 0.15  # the wake-up that waited behind the held loop
    assert sorted(late)[len(late) // 2] < 0.05  # the others came about on time


def test_the_samples_are_written_for_the_runner(tmp_path):
    lag = looplag.LoopLag()
    lag.samples = [(100.0, 0.002), (100.01, 0.3)]
    path = lag.write(tmp_path)
    assert path.name.startswith("loop-lag-") and json.loads(path.read_text()) == [[100.0, 0.002], [100.01, 0.3]]

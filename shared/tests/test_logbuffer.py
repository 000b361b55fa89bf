"""BatchingStreamHandler: the lines of a busy moment in one write, warnings at once, none lost at exit."""

from __future__ import annotations

import io
import logging
import os
import time

import pytest

from shared.logbuffer import BatchingStreamHandler


class Stream(io.StringIO):
    """Counts the writes, as the reader at the other end of a pipe would wake for each."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def logged():
    stream = Stream()
    handler = BatchingStreamHandler(stream, flush_ms=500)  # wide: a busy machine may pause between lines
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"test.logbuffer.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, handler, stream
    logger.removeHandler(handler)


def _wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


def test_lines_of_a_moment_are_written_together_after_the_delay(logged):
    logger, _, stream = logged
    for i in range(20):
        logger.info("placed %d", i)
    assert stream.writes == []  # kept for now
    _wait_for(lambda: stream.writes)
    time.sleep(0.02)
    assert len(stream.writes) == 1
    assert stream.getvalue() == "".join(f"INFO placed {i}\n" for i in range(20))


def test_a_warning_is_written_at_once_after_the_lines_before_it(logged):
    logger, _, stream = logged
    logger.info("first")
    logger.warning("something is wrong")
    assert stream.writes == ["INFO first\nWARNING something is wrong\n"]


def test_flush_writes_what_is_kept_as_logging_does_at_exit(logged):
    logger, handler, stream = logged
    logger.info("last words")
    handler.flush()
    assert stream.getvalue() == "INFO last words\n"


def test_a_later_moment_is_another_write(logged):
    logger, _, stream = logged
    logger.info("one")
    _wait_for(lambda: stream.writes)
    logger.info("two")
    _wait_for(lambda: len(stream.writes) == 2)
    assert stream.writes == ["INFO one\n", "INFO two\n"]


def test_no_delay_writes_each_line_at_once():
    stream = Stream()
    handler = BatchingStreamHandler(stream, flush_ms=0)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for message in ("a", "b"):
        handler.handle(logging.LogRecord("x", logging.INFO, __file__, 1, message, None, None))
    assert stream.writes == ["a\n", "b\n"]


def test_a_forked_child_writes_its_own_lines_not_its_parents(logged, monkeypatch):
    logger, handler, stream = logged
    logger.info("parent's")
    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)  # the next line is logged in a child
    logger.info("child's")
    _wait_for(lambda: stream.writes)
    time.sleep(0.02)
    assert stream.getvalue() == "INFO child's\n"

"""A log handler that writes the lines of a busy moment together, not one ``write`` each.

Every line a process writes to its standard error is one more wake-up of whatever reads
it: supervisord on a developer machine, the container runtime under compose. Measured on
the developer stack, supervisord spent about 0.2 ms of CPU per line it passed on (a poll,
a read, a write, a seek and a wait for children, in Python), more than half a
millisecond per won order. :class:`BatchingStreamHandler` keeps the lines below
``WARNING`` for at most ``flush_ms`` after the first of them, then writes them all at once;
a ``WARNING`` or worse is written at once, with the lines before it. ``flush()`` (called
by ``logging.shutdown`` at exit) writes what is kept. A process killed outright loses at
most ``flush_ms`` of its INFO lines; ``flush_ms`` 0 writes every line at once.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import TextIO


class BatchingStreamHandler(logging.StreamHandler):
    """``logging.StreamHandler`` that writes lines below ``WARNING`` in batches."""

    def __init__(self, stream: TextIO | None = None, flush_ms: float = 100) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.delay = max(0.0, float(flush_ms)) / 1000
        self._pending: list[str] = []
        self._pid = -1  # the process whose writer thread runs (none yet)
        self._due = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held (Handler.handle)
        if self.delay == 0:
            super().emit(record)
            return
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - as StreamHandler.emit: report, never raise
            self.handleError(record)
            return
        if os.getpid() != self._pid:
            self._start_writer()
        self._pending.append(line)
        if record.levelno >= logging.WARNING:
            self._write_pending()
        elif len(self._pending) == 1:
            self._due.set()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_pending()
            super().flush()
        finally:
            self.release()

    def _start_writer(self) -> None:
        """A writer thread for this process: after a fork the child has none, and the lines
        it inherited are its parent's to write."""
        self._pid = os.getpid()
        self._pending.clear()
        self._due = threading.Event()
        threading.Thread(target=self._writer, args=(self._due,), name="log-writer", daemon=True).start()

    def _writer(self, due: threading.Event) -> None:
        while True:
            due.wait()
            time.sleep(self.delay)
            self.acquire()
            try:
                due.clear()
                self._write_pending()
            finally:
                self.release()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream must not break the caller
            pass

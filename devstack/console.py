"""Printing to the operator: progress lines and fatal errors."""

from __future__ import annotations

import sys


def say(msg: str) -> None:
    print(msg, flush=True)


def die(msg: str, code: int = 1) -> None:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)

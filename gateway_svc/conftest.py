"""Test fixtures of the gateway (no database: it keeps none)."""

from shared.testing import *  # noqa: F401,F403 - shared fixtures

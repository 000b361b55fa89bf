"""Test settings of the payment service: its own Redis database and Kafka topic prefix."""

from shared.testing import *  # noqa: F401,F403 - shared fixtures

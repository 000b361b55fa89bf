"""Test settings of the order service: its own Redis database and Kafka topic prefix."""

import pytest

from shared.testing import *  # noqa: F401,F403 - shared fixtures


@pytest.fixture(autouse=True)
def _no_variant_details_kept():
    """Each test starts without the variant details an earlier one kept in process memory."""
    from orders import clients

    clients.forget_variant_details()
    yield
    clients.forget_variant_details()

from orders.tests.conftest import place, upstreams  # noqa: F401 - the same fake catalog and inventory

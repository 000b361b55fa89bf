"""Bodies no client of the shop sends get a 400 in the shop's error shape, never a 500."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_deeply_nested_order_body_is_a_validation_error(member_client, upstreams):
    r = member_client(1).post("/orders/add", "[" * 1000 + "]" * 1000, content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "validation_error"
    assert upstreams.reserve_calls == 0

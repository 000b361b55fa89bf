"""Bodies no client of the shop sends get a 400 in the shop's error shape, never a 500."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/member/login", "/member/email/send", "/member/join"])
def test_deeply_nested_body_is_a_validation_error(anon_client, path):
    r = anon_client.post(path, "[" * 1000 + "]" * 1000, content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "validation_error"

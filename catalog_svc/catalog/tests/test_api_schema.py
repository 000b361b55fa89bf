"""The catalog's OpenAPI document names its error answers in the one error shape."""

from __future__ import annotations

from shared.testing import documented_errors


def test_the_error_answers_of_each_catalog_route_are_documented_in_the_error_shape(api_schema):
    expected = {("get", "/cloth/list"): {400, 404}, ("get", "/cloth/detail/{cloth_id}"): {404}}
    for (method, path), statuses in expected.items():
        errors = documented_errors(api_schema, method, path)
        assert set(errors) >= statuses and set(errors.values()) == {"Error"}, (method, path, errors)

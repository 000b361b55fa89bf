"""The one error shape: field errors flattened and named, codes mapped to statuses."""

from rest_framework import exceptions

from shared import errors


def test_nested_validation_errors_name_the_field_path():
    exc = exceptions.ValidationError({"lines": [{}, {"quantity": ["Must be at least 1."]}], "email": ["Required."]})
    resp = errors.exception_handler(exc, {})
    assert resp.status_code == 400
    body = resp.data["error"]
    assert body["code"] == "validation_error"
    assert body["fields"] == {"lines.1.quantity": ["Must be at least 1."], "email": ["Required."]}


def test_domain_error_keeps_code_status_and_extra():
    resp = errors.exception_handler(errors.SoldOut("Size M is sold out.", variant_id=7), {})
    assert resp.status_code == 409
    assert resp.data == {"error": {"code": "sold_out", "message": "Size M is sold out.", "variant_id": 7}}


def test_rate_limited_carries_retry_after():
    resp = errors.exception_handler(errors.RateLimited(retry_after=42), {})
    assert resp.status_code == 429
    assert resp["Retry-After"] == "42"


def test_missing_credentials_are_401_not_403():
    resp = errors.exception_handler(exceptions.NotAuthenticated(), {})
    assert resp.status_code == 401
    assert resp.data["error"]["code"] == "not_authenticated"


def test_unknown_url_answers_json_404(client):
    resp = client.get("/no/such/path")
    assert resp.status_code == 404
    assert resp.json() == {"error": {"code": "not_found", "message": "Not found."}}

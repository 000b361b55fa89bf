"""The member service's OpenAPI document says what its answers are and what its input may be."""

from __future__ import annotations

from django.conf import settings

from shared.testing import documented_errors


def _schema(doc: dict, name: str) -> dict:
    return doc["components"]["schemas"][name]


def test_a_password_change_is_documented_with_both_passwords_required(api_schema):
    body = api_schema["paths"]["/member/password"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(_schema(api_schema, body["$ref"].rsplit("/", 1)[-1])["required"]) == {
        "current_password",
        "new_password",
    }


def test_a_new_password_is_documented_with_the_length_the_server_asks_for(api_schema, settings):
    (length,) = [v for v in settings.AUTH_PASSWORD_VALIDATORS if v["NAME"].endswith(".MinimumLengthValidator")]
    least = length["OPTIONS"]["min_length"]
    assert _schema(api_schema, "JoinRequest")["properties"]["password"]["minLength"] == least
    assert _schema(api_schema, "PasswordChangeRequest")["properties"]["new_password"]["minLength"] == least


def test_the_error_answers_of_each_member_route_are_documented_in_the_error_shape(api_schema):
    assert settings.REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] == "shared.openapi.ShopAutoSchema"
    expected = {
        ("post", "/member/email/send"): {400, 415, 429},
        ("post", "/member/email/verify"): {400, 415, 429},
        ("post", "/member/join"): {400, 409, 415},
        ("post", "/member/login"): {400, 401, 415, 429},
        ("get", "/member/refresh"): {401},
        ("get", "/member/mypage"): {404},
        ("put", "/member/mypage"): {400, 404, 415},
        ("patch", "/member/password"): {400, 401, 404, 415, 429},
    }
    for (method, path), statuses in expected.items():
        errors = documented_errors(api_schema, method, path)
        assert set(errors) >= statuses and set(errors.values()) == {"Error"}, (method, path, errors)
    assert "Retry-After" in api_schema["paths"]["/member/login"]["post"]["responses"]["429"]["headers"]

"""The payment service's OpenAPI document says what its answers are and what its input may be."""

from __future__ import annotations

import re

import pytest

from payments.models import PaymentStatus
from payments.serializers import CompletePaymentSerializer
from shared.testing import documented_errors


def _schema(doc: dict, name: str) -> dict:
    return doc["components"]["schemas"][name]


def test_a_payments_status_is_documented_as_its_own_enum_with_every_state(api_schema):
    payment = _schema(api_schema, "Payment")
    status = payment["properties"]["status"]
    ref = status.get("$ref") or status["allOf"][0]["$ref"]
    assert ref == "#/components/schemas/PaymentStatusEnum" and "status" in payment["required"]
    assert sorted(_schema(api_schema, "PaymentStatusEnum")["enum"]) == sorted(PaymentStatus.values)


@pytest.mark.parametrize(
    ("card", "valid"),
    [
        ("4242424242424242", True),
        ("4242 4242 4242 4242", True),
        ("4242-4242-4242-4242", True),
        ("424242424242", True),  # 12 digits
        ("4242424242424242424", True),  # 19
        ("42424242424", False),  # 11
        ("42424242424242424242", False),  # 20
        ("4242x24242424242", False),
        ("४२४२४२४२४२४२४२४२", False),  # digits, but not ASCII ones
        ("", False),
    ],
)
def test_the_card_number_is_documented_as_the_server_checks_it(api_schema, card, valid):
    field = _schema(api_schema, "CompletePaymentRequest")["properties"]["card_number"]
    documented = field["minLength"] <= len(card) <= field["maxLength"] and re.search(field["pattern"], card)
    assert bool(documented) is valid
    assert CompletePaymentSerializer(data={"card_number": card}).is_valid() is valid


def test_the_error_answers_of_each_payment_route_are_documented_in_the_error_shape(api_schema):
    expected = {("post", "/payment"): {400, 404, 409, 415}, ("put", "/payment/{order_id}"): {400, 402, 404, 409, 415}}
    for (method, path), statuses in expected.items():
        errors = documented_errors(api_schema, method, path)
        assert set(errors) >= statuses and set(errors.values()) == {"Error"}, (method, path, errors)

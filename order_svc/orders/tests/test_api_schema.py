"""The order service's OpenAPI document says what its answers are and what its input may be."""

from __future__ import annotations

from django.conf import settings

from orders.models import OrderStatus
from shared.testing import documented_errors


def _schema(doc: dict, name: str) -> dict:
    return doc["components"]["schemas"][name]


def test_an_orders_status_is_documented_with_every_state_it_takes(api_schema):
    order = _schema(api_schema, "Order")
    ref = order["properties"]["status"].get("$ref") or order["properties"]["status"]["allOf"][0]["$ref"]
    assert ref == "#/components/schemas/OrderStatusEnum" and "status" in order["required"]
    assert sorted(_schema(api_schema, "OrderStatusEnum")["enum"]) == sorted(OrderStatus.values)


def test_an_order_is_documented_with_one_line_at_least_and_the_limits_the_server_keeps(api_schema):
    lines = _schema(api_schema, "PlaceOrderRequest")["properties"]["lines"]
    assert lines["minItems"] == 1 and lines["maxItems"] == settings.ORDER_MAX_LINES
    quantity = _schema(api_schema, "LineInRequest")["properties"]["quantity"]
    assert quantity["minimum"] == 1 and quantity["maximum"] == settings.ORDER_MAX_LINE_QUANTITY
    wishlist_quantity = _schema(api_schema, "ItemInRequest")["properties"]["quantity"]
    assert wishlist_quantity["maximum"] == settings.ORDER_MAX_LINE_QUANTITY


def test_the_idempotency_key_is_documented_as_at_most_128_characters(api_schema):
    (header,) = [p for p in api_schema["paths"]["/orders/add"]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["schema"]["maxLength"] == 128


def test_the_error_answers_of_each_order_route_are_documented_in_the_error_shape(api_schema):
    assert set(_schema(api_schema, "Error")["required"]) == {"error"}
    expected = {
        ("post", "/orders/add"): {400, 409, 415, 422},
        ("post", "/orders/add/Wishlist"): {400, 409, 415, 422},
        ("put", "/orders/cancel"): {400, 404, 409, 415},
        ("put", "/orders/refund"): {400, 404, 409, 415},
        ("get", "/orders/detail/{order_id}"): {404},
        ("get", "/orders/list/{member_id}"): {400, 403, 404},
        ("post", "/wishlist/add"): {400, 415},
        ("put", "/wishlist/update"): {400, 404, 415},
        ("delete", "/wishlist/delete"): {400, 404},
    }
    for (method, path), statuses in expected.items():
        errors = documented_errors(api_schema, method, path)
        assert set(errors) >= statuses, (method, path, errors)
        assert set(errors.values()) == {"Error"}, (method, path, errors)


def test_an_order_placed_again_with_its_idempotency_key_is_documented_as_200(api_schema):
    for path in ("/orders/add", "/orders/add/Wishlist"):
        responses = api_schema["paths"][path]["post"]["responses"]
        assert {"200", "201"} <= set(responses), path


def test_ids_in_paths_and_page_parameters_are_documented_with_their_bounds(api_schema):
    parameters = {p["name"]: p["schema"] for p in api_schema["paths"]["/orders/list/{member_id}"]["get"]["parameters"]}
    assert parameters["member_id"]["minimum"] == 1 and parameters["member_id"]["maximum"] == 2**63 - 1
    assert parameters["page"]["minimum"] == 1
    assert parameters["page_size"]["minimum"] == 1 and parameters["page_size"]["maximum"] == 100

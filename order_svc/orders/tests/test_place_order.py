"""POST /orders/add: the hot path. Reserve first, then one transaction; nothing half-written."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from orders import clients, services
from orders.models import Order, OrderStatus, OrderTransition
from shared import errors
from shared.errors import SAME_ANSWER_HEADER
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db


def test_order_is_placed_with_catalog_prices_and_reserved_under_its_own_id(place, upstreams):
    resp = place(5, [{"variant_id": 101, "quantity": 2, "unit_price": "1.00"}, {"variant_id": 102, "quantity": 1}])
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["member_id"] == 5 and body["status"] == "PENDING_PAYMENT"
    assert body["lines"] == [
        {"variant_id": 101, "cloth_id": 7, "name": "Drop Tee", "size": "S", "unit_price": "59000.00", "quantity": 2},
        {"variant_id": 102, "cloth_id": 7, "name": "Drop Tee", "size": "M", "unit_price": "61000.50", "quantity": 1},
    ]
    assert body["total"] == "179000.50"
    assert body["payment_deadline"] > body["created_at"]
    assert list(upstreams.reservations) == [body["order_id"]]
    assert upstreams.reservations[body["order_id"]]["member_id"] == 5
    event = OutboxEvent.objects.get(event_type="OrderPlaced")
    assert event.aggregate_id == str(body["order_id"]) and event.topic == "orders"
    assert event.payload["member_id"] == 5 and event.payload["total"] == "179000.50"
    assert event.payload["lines"][0] == {"variant_id": 101, "cloth_id": 7, "quantity": 2, "unit_price": "59000.00"}
    assert list(OrderTransition.objects.values_list("from_status", "to_status", "cause")) == [
        ("", "PENDING_PAYMENT", "placed")
    ]


def test_member_comes_from_the_gateway_never_the_body(member_client, upstreams):
    resp = member_client(5).post(
        "/orders/add", {"member_id": 9, "lines": [{"variant_id": 101, "quantity": 1}]}, format="json"
    )
    assert resp.status_code == 201 and resp.json()["member_id"] == 5


def test_without_identity_the_order_is_refused(anon_client, upstreams):
    resp = anon_client.post("/orders/add", {"lines": [{"variant_id": 101, "quantity": 1}]}, format="json")
    assert resp.status_code == 401
    assert upstreams.reserve_calls == 0


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        (None, "lines"),
        ([{"variant_id": 101, "quantity": 0}], "lines.0.quantity"),
        ([{"variant_id": 101, "quantity": 11}], "lines.0.quantity"),
        ([{"variant_id": 101, "quantity": "many"}], "lines.0.quantity"),
        ([{"variant_id": "x", "quantity": 1}], "lines.0.variant_id"),
        ([{"variant_id": 101}], "lines.0.quantity"),
        ([{"variant_id": 101, "quantity": 1}, {"variant_id": 101, "quantity": 2}], "lines.1.variant_id"),
        ([{"variant_id": 101, "quantity": 1}, {"variant_id": 999, "quantity": 1}], "lines.1.variant_id"),
        ("lines", "lines"),
    ],
)
def test_bad_lines_are_refused_naming_the_field_and_nothing_is_reserved(member_client, upstreams, lines, field):
    body = {} if lines is None else {"lines": lines}
    resp = member_client(1).post("/orders/add", body, format="json")
    assert resp.status_code == 400, resp.json()
    assert resp.json()["error"]["code"] == "validation_error"
    assert field in resp.json()["error"]["fields"]
    assert upstreams.reserve_calls == 0 and Order.objects.count() == 0


@pytest.mark.parametrize("error", [errors.SoldOut, errors.NotOnSale, errors.LimitExceeded])
def test_inventory_refusal_passes_through_with_nothing_written(place, upstreams, error):
    upstreams.fail_reserve_with = error()
    resp = place()
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == error.code
    assert Order.objects.count() == 0 and OutboxEvent.objects.count() == 0


def test_sold_out_when_stock_runs_out(place, upstreams):
    upstreams.stock[101] = 1
    assert place(1).status_code == 201
    resp = place(2)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "sold_out"
    assert Order.objects.count() == 1


def test_failed_order_write_releases_the_reservation_and_answers_503(place, upstreams, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(services.placing, "insert_announced", broken)
    resp = place()
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "upstream_unavailable"
    assert Order.objects.count() == 0 and OutboxEvent.objects.count() == 0
    assert upstreams.reservations == {} and upstreams.stock[101] == 10
    assert len(upstreams.released) == 1


def test_inventory_timeout_answers_504_and_gives_back_any_reservation(place, upstreams):
    upstreams.fail_reserve_with = errors.UpstreamTimeout()
    resp = place()
    assert resp.status_code == 504
    assert Order.objects.count() == 0 and len(upstreams.released) == 1


def test_second_click_with_same_key_returns_same_order_and_one_reservation(place, upstreams):
    first = place(1, key="click-1")
    second = place(1, key="click-1")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["order_id"] == second.json()["order_id"]
    assert upstreams.reserve_calls == 1 and Order.objects.count() == 1


def test_same_key_with_another_body_is_refused(place, upstreams):
    assert place(1, key="k").status_code == 201
    resp = place(1, [{"variant_id": 102, "quantity": 1}], key="k")
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "idempotency_key_reused"
    assert upstreams.reserve_calls == 1


def test_same_key_of_another_member_is_their_own(place, upstreams):
    a, b = place(1, key="k"), place(2, key="k")
    assert a.status_code == b.status_code == 201
    assert a.json()["order_id"] != b.json()["order_id"]


def test_key_of_a_sold_out_attempt_may_be_retried(place, upstreams):
    upstreams.fail_reserve_with = errors.SoldOut()
    assert place(1, key="k").status_code == 409
    upstreams.fail_reserve_with = None
    assert place(1, key="k").status_code == 201


def test_overlong_idempotency_key_is_refused(place):
    resp = place(1, key="k" * 129)
    assert resp.status_code == 400 and "Idempotency-Key" in resp.json()["error"]["fields"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_clicks_with_same_key_reserve_once(member_client, upstreams):
    upstreams.reserve_delay = 0.2
    answers: list = []
    start = threading.Barrier(3)

    def click():
        start.wait()
        try:
            resp = member_client(1).post(
                "/orders/add",
                {"lines": [{"variant_id": 101, "quantity": 1}]},
                format="json",
                HTTP_IDEMPOTENCY_KEY="race",
            )
            answers.append((resp.status_code, resp.json()["order_id"]))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(code for code, _ in answers) == [200, 200, 201]
    assert len({order_id for _, order_id in answers}) == 1
    assert upstreams.reserve_calls == 1 and Order.objects.count() == 1


def test_catalog_is_asked_once_while_its_answer_is_cached(place, upstreams):
    for member_id in range(1, 5):
        assert place(member_id).status_code == 201
    assert upstreams.catalog_calls == 1


def test_a_variants_details_are_read_from_process_memory_until_the_catalogs_answer_expires(
    place, upstreams, monkeypatch, settings
):
    settings.ORDER_CATALOG_CACHE_SECONDS = 30
    now = [1_000_000.0]
    monkeypatch.setattr(clients.time, "time", lambda: now[0])
    reads: list[list[str]] = []
    get_many = clients.cache.get_many
    monkeypatch.setattr(clients.cache, "get_many", lambda keys: reads.append(keys) or get_many(keys))

    assert place(1).status_code == 201
    assert upstreams.catalog_calls == 1 and len(reads) == 1
    now[0] += 29
    assert place(2).status_code == 201
    assert place(3).status_code == 201
    assert upstreams.catalog_calls == 1 and len(reads) == 1  # neither the catalog nor Redis asked

    # a price change shows no later than ORDER_CATALOG_CACHE_SECONDS after the catalog's answer
    upstreams.add_variant(101, size="S", price="1.00")
    now[0] += 2
    clients.cache.clear()  # the shared cache's copy expired too (Redis keeps its own time)
    assert place(4).json()["total"] == "1.00"
    assert upstreams.catalog_calls == 2


def test_placing_an_order_costs_a_fixed_number_of_queries(place, upstreams, django_assert_max_num_queries):
    place(1)  # warm the catalog cache
    lines = [{"variant_id": 101, "quantity": 1}, {"variant_id": 102, "quantity": 1}]
    with django_assert_max_num_queries(2):  # nextval, one statement writing it all
        assert place(2, lines).status_code == 201


@pytest.mark.django_db(transaction=True)  # as in the service: no test's transaction around the placing
def test_an_order_its_lines_transition_and_event_are_written_in_one_statement(place, upstreams):
    """One statement commits on its own: no BEGIN and COMMIT, two more round trips, around it."""
    place(1)  # warm the catalog cache
    lines = [{"variant_id": 101, "quantity": 1}, {"variant_id": 102, "quantity": 2}]
    with CaptureQueriesContext(connection) as captured:
        order_id = place(2, lines).json()["order_id"]
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    assert statements == ["SELECT", "WITH"], captured.captured_queries  # nextval first
    order = Order.objects.get(order_id=order_id)
    assert sorted((line.variant_id, line.quantity) for line in order.lines.all()) == [(101, 1), (102, 2)]
    assert list(order.transitions.values_list("from_status", "to_status")) == [("", OrderStatus.PENDING_PAYMENT)]
    event = OutboxEvent.objects.get(event_type="OrderPlaced", aggregate_id=str(order_id))
    assert [line["variant_id"] for line in event.payload["lines"]] == [101, 102]


def test_total_is_exact_decimal(place, upstreams):
    upstreams.add_variant(103, price="0.10")
    resp = place(1, [{"variant_id": 103, "quantity": 3}])
    assert resp.json()["total"] == "0.30"
    assert Order.objects.get().total == Decimal("0.30")
    assert Order.objects.get().status == OrderStatus.PENDING_PAYMENT


def test_waiting_retry_learns_at_once_when_the_first_attempt_gave_the_key_up(upstreams, redis_db):
    claim_key = services.placing._claim_key(1, "gone")
    with pytest.raises(errors.RequestInProgress):
        services.placing._wait_for_claimed_order(
            member_id=1, idempotency_key="gone", fingerprint="f", claimed={"fingerprint": "f"}, claim_key=claim_key
        )


def _gate_says_sold_out(upstreams, variant_id: int) -> None:
    """Make the fake inventory answer as the real one does through shared.upstream: a 409 body."""
    from shared import upstream

    real_reserve = upstreams._reserve

    def sold_out(body):
        if all(line["variant_id"] != variant_id for line in body["lines"]):
            return real_reserve(body)
        with upstreams.lock:
            upstreams.reserve_calls += 1
        upstream.raise_for_answer(
            "inventory", 409, {"error": {"code": "sold_out", "message": "Sold out.", "variant_id": variant_id}}
        )

    upstreams._reserve = sold_out


def test_gate_sold_out_answer_is_remembered_briefly_and_skips_the_hop(place, upstreams, settings):
    settings.ORDER_SOLD_OUT_MEMORY_SECONDS = 30
    _gate_says_sold_out(upstreams, 101)
    first = place(1)
    second = place(2)
    assert first.status_code == second.status_code == 409
    assert second.json()["error"]["code"] == "sold_out" and second.json()["error"]["variant_id"] == 101
    assert upstreams.reserve_calls == 1  # the second click never reached the inventory
    # another variant is not affected by the mark
    assert place(3, [{"variant_id": 102, "quantity": 1}]).status_code == 201
    assert Order.objects.count() == 1


def test_sold_out_mark_fades_so_released_units_sell_again(place, upstreams, settings):
    settings.ORDER_SOLD_OUT_MEMORY_SECONDS = 0.05
    real_reserve = upstreams._reserve
    _gate_says_sold_out(upstreams, 101)
    assert place(1).status_code == 409
    upstreams._reserve = real_reserve  # a unit came back (cancel, expiry)
    import time

    time.sleep(0.06)
    assert place(2).status_code == 201


def test_known_sold_out_click_is_answered_before_validation_and_io(place, upstreams, settings):
    settings.ORDER_SOLD_OUT_MEMORY_SECONDS = 30
    _gate_says_sold_out(upstreams, 101)
    assert place(1).status_code == 409
    catalog_calls = upstreams.catalog_calls
    resp = place(2)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "sold_out"
    assert upstreams.catalog_calls == catalog_calls and upstreams.reserve_calls == 1
    # a malformed body still gets its field errors, not a sold-out answer
    bad = place(3, [{"variant_id": 101, "quantity": 0}])
    assert bad.status_code == 400 and "lines.0.quantity" in bad.json()["error"]["fields"]


def test_a_remembered_sold_out_answer_says_how_long_the_same_body_gets_it(place, upstreams, settings):
    settings.ORDER_SOLD_OUT_MEMORY_SECONDS = 30
    _gate_says_sold_out(upstreams, 101)
    first = place(1)  # the gate's own answer: the mark is made now, nothing promised yet
    assert first.status_code == 409 and SAME_ANSWER_HEADER not in first
    remembered = place(2)
    assert remembered.status_code == 409 and remembered.json() == first.json()
    assert 29 < float(remembered[SAME_ANSWER_HEADER]) <= 30
    # a click with a key may be the retry of an order that won: never promised
    keyed = place(3, key="click-3")
    assert keyed.status_code == 409 and SAME_ANSWER_HEADER not in keyed
    # nor a body the serializer has to judge
    assert SAME_ANSWER_HEADER not in place(4, [{"variant_id": 101, "quantity": 0}])


def test_a_retry_with_its_idempotency_key_still_finds_the_order_it_won(place, upstreams, settings):
    settings.ORDER_SOLD_OUT_MEMORY_SECONDS = 30
    won = place(1, key="click-1")
    assert won.status_code == 201
    _gate_says_sold_out(upstreams, 101)
    assert place(2).status_code == 409  # the variant is now marked sold out
    again = place(1, key="click-1")
    assert again.status_code == 200 and again.json()["order_id"] == won.json()["order_id"]


def test_a_refusal_inside_the_write_gives_the_stock_and_the_key_back(upstreams, redis_db):
    def refuse(order):
        raise errors.Conflict("the wishlist changed")

    line = [services.LineRequest(variant_id=101, quantity=1)]
    with pytest.raises(errors.Conflict):
        services.place_order(member_id=1, lines=line, idempotency_key="k", on_placed=refuse)
    assert Order.objects.count() == 0 and len(upstreams.released) == 1 and upstreams.stock[101] == 10
    order, created = services.place_order(member_id=1, lines=line, idempotency_key="k")  # the key is free again
    assert created and [ln.variant_id for ln in order.line_items] == [101]

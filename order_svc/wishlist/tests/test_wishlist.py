"""The wishlist: one's own items, validated against the catalog, ordered all or nothing."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from orders.models import Order

from shared import errors
from wishlist.models import WishlistItem

pytestmark = pytest.mark.django_db


def _add(client, variant_id: int, quantity: int = 1):
    return client.post("/wishlist/add", {"variant_id": variant_id, "quantity": quantity}, format="json")


def test_add_read_update_delete(member_client, upstreams):
    me = member_client(1)
    resp = _add(me, 101, 2)
    assert resp.status_code == 201
    assert resp.json() == {"variant_id": 101, "cloth_id": 7, "name": "Drop Tee", "size": "S", "quantity": 2}
    assert _add(me, 101, 1).json()["quantity"] == 3
    assert me.put("/wishlist/update", {"variant_id": 101, "quantity": 5}, format="json").json()["quantity"] == 5
    assert me.get("/wishlist").json() == {
        "items": [{"variant_id": 101, "cloth_id": 7, "name": "Drop Tee", "size": "S", "quantity": 5}]
    }
    assert me.delete("/wishlist/delete", {"variant_id": 101}, format="json").status_code == 204
    assert me.get("/wishlist").json() == {"items": []}


def test_unknown_item_is_refused(member_client, upstreams):
    resp = _add(member_client(1), 999)
    assert resp.status_code == 400 and "variant_id" in resp.json()["error"]["fields"]
    assert not WishlistItem.objects.exists()


@pytest.mark.parametrize("quantity", [0, -1, 11, "two", None])
def test_bad_quantity_is_refused_naming_the_field(member_client, upstreams, quantity):
    resp = member_client(1).post("/wishlist/add", {"variant_id": 101, "quantity": quantity}, format="json")
    assert resp.status_code == 400 and "quantity" in resp.json()["error"]["fields"]


def test_adding_past_the_line_limit_is_refused(member_client, upstreams):
    _add(member_client(1), 101, 10)
    resp = _add(member_client(1), 101, 1)
    assert resp.status_code == 400 and "quantity" in resp.json()["error"]["fields"]
    assert WishlistItem.objects.get().quantity == 10


def test_update_or_delete_of_an_item_not_in_the_wishlist_is_404(member_client, upstreams):
    _add(member_client(2), 101)  # someone else's
    me = member_client(1)
    assert me.put("/wishlist/update", {"variant_id": 101, "quantity": 2}, format="json").status_code == 404
    assert me.delete("/wishlist/delete", {"variant_id": 101}, format="json").status_code == 404
    assert WishlistItem.objects.get().quantity == 1


def test_wishlists_are_private(member_client, upstreams):
    _add(member_client(2), 101)
    assert member_client(1).get("/wishlist").json() == {"items": []}


def test_ordering_the_whole_wishlist_empties_it(member_client, upstreams):
    me = member_client(1)
    _add(me, 101, 2)
    _add(me, 102, 1)
    resp = me.post("/orders/add/Wishlist", {}, format="json")
    assert resp.status_code == 201, resp.json()
    assert [(line["variant_id"], line["quantity"]) for line in resp.json()["lines"]] == [(101, 2), (102, 1)]
    assert resp.json()["total"] == "179000.50"
    assert not WishlistItem.objects.exists()


def test_ordering_named_items_keeps_the_rest(member_client, upstreams):
    me = member_client(1)
    _add(me, 101)
    _add(me, 102)
    resp = me.post("/orders/add/Wishlist", {"variant_ids": [102]}, format="json")
    assert resp.status_code == 201 and [line["variant_id"] for line in resp.json()["lines"]] == [102]
    assert list(WishlistItem.objects.values_list("variant_id", flat=True)) == [101]


def test_naming_an_item_not_in_the_wishlist_is_refused(member_client, upstreams):
    _add(member_client(1), 101)
    resp = member_client(1).post("/orders/add/Wishlist", {"variant_ids": [101, 102]}, format="json")
    assert resp.status_code == 400 and "variant_ids" in resp.json()["error"]["fields"]
    assert upstreams.reserve_calls == 0


def test_ordering_an_empty_wishlist_is_refused(member_client, upstreams):
    resp = member_client(1).post("/orders/add/Wishlist", {}, format="json")
    assert resp.status_code == 400 and "wishlist" in resp.json()["error"]["fields"]


def test_sold_out_wishlist_order_keeps_the_wishlist(member_client, upstreams):
    _add(member_client(1), 101)
    upstreams.fail_reserve_with = errors.SoldOut()
    resp = member_client(1).post("/orders/add/Wishlist", {}, format="json")
    assert resp.status_code == 409
    assert WishlistItem.objects.count() == 1 and Order.objects.count() == 0


def test_retried_wishlist_order_with_same_key_returns_the_same_order(member_client, upstreams):
    _add(member_client(1), 101)
    first = member_client(1).post("/orders/add/Wishlist", {}, format="json", HTTP_IDEMPOTENCY_KEY="w1")
    second = member_client(1).post("/orders/add/Wishlist", {}, format="json", HTTP_IDEMPOTENCY_KEY="w1")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["order_id"] == second.json()["order_id"] and upstreams.reserve_calls == 1


def _wait_for_blocked_sessions(at_least: int) -> None:
    """Until ``at_least`` other sessions of this database wait for a lock (a failsafe ends it)."""
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction the view is cached
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= at_least:
                return
            time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} adds ever waited for the first one")


@pytest.mark.django_db(transaction=True)  # each thread commits on its own connection, as in production
def test_parallel_adds_of_one_variant_each_answer_as_a_second_add_does(member_client, upstreams, settings):
    adds = 20
    settings.ORDER_MAX_LINE_QUANTITY = adds + 1
    answers: list[tuple[int, dict]] = []
    start = threading.Barrier(adds)

    def add():
        start.wait()
        try:
            resp = _add(member_client(1), 101, 1)
            answers.append((resp.status_code, resp.json()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=add) for _ in range(adds)]
    # The first add of the variant is in flight (inserted, not yet committed) while the others
    # arrive: they find no row, try to insert theirs and wait for the first one's.
    with transaction.atomic():
        WishlistItem.objects.create(member_id=1, variant_id=101, cloth_id=7, name="Drop Tee", size="S", quantity=1)
        for t in threads:
            t.start()
        _wait_for_blocked_sessions(2)
    for t in threads:
        t.join()

    assert [code for code, _ in answers] == [201] * adds, answers
    # Each add was applied on top of the ones before it: the answers count on from the first.
    assert sorted(body["quantity"] for _, body in answers) == list(range(2, adds + 2))
    assert WishlistItem.objects.get(member_id=1, variant_id=101).quantity == adds + 1

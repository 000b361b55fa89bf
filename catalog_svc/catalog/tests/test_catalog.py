"""The catalog: list and detail (filters, sorting, caching, errors), internal details, stock reports."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from catalog import services
from catalog.models import Variant
from shared.messaging.events import Event
from shared.messaging.handlers import apply_event, apply_events
from shared.messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _cloth(name="Tee", price="59000", sizes=(("S", 3), ("M", 0)), **kw):
    cloth, _ = services.create_cloth(name=name, price=price, sizes=list(sizes) if sizes is not None else None, **kw)
    return cloth


def _stock_changed(cloth, variant, available, version) -> Event:
    return Event(
        event_id=uuid.uuid4(),
        event_type="StockChanged",
        event_version=1,
        occurred_at=timezone.now(),
        aggregate_type="stock",
        aggregate_id=str(cloth.id),
        topic="inventory",
        payload={
            "cloth_id": cloth.id,
            "variants": [{"variant_id": variant.id, "available": available, "total": 10, "version": version}],
        },
    )


def test_list_shows_the_contract_fields(anon_client, inventory_calls):
    start = timezone.now() + dt.timedelta(hours=1)
    cloth = _cloth(brand="Acme", category="tops", image_url="https://img.example/1.jpg", sale_starts_at=start)
    r = anon_client.get("/cloth/list")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 1 and body["next"] is None and body["previous"] is None
    assert body["results"] == [
        {
            "cloth_id": cloth.id,
            "name": "Tee",
            "brand": "Acme",
            "category": "tops",
            "price": "59000.00",
            "image_url": "https://img.example/1.jpg",
            "sale_starts_at": body["results"][0]["sale_starts_at"],
            "on_sale": False,
            "in_stock": True,
        }
    ]
    assert dt.datetime.fromisoformat(body["results"][0]["sale_starts_at"]) == start


def test_filters_and_sorting(anon_client, inventory_calls):
    cheap = _cloth(name="Cheap", price="10", brand="A", category="tops")
    dear = _cloth(name="Dear", price="99", brand="B", category="tops", sizes=[("ONE", 0)])
    later = _cloth(
        name="Later", price="50", brand="A", category="shoes", sale_starts_at=timezone.now() + dt.timedelta(days=1)
    )

    def names(query: str) -> list[str]:
        r = anon_client.get("/cloth/list" + query)
        assert r.status_code == 200, r.content
        return [c["name"] for c in r.json()["results"]]

    assert names("") == ["Later", "Dear", "Cheap"]
    assert names("?sort=price") == ["Cheap", "Later", "Dear"]
    assert names("?sort=-price") == ["Dear", "Later", "Cheap"]
    assert names("?brand=A&sort=price") == ["Cheap", "Later"]
    assert names("?category=tops") == ["Dear", "Cheap"]
    assert names("?on_sale=true&sort=price") == ["Cheap", "Dear"]
    assert names("?on_sale=false") == ["Later"]
    assert names("?in_stock=false") == ["Dear"]
    assert names("?in_stock=true&sort=price") == ["Cheap", "Later"]
    page = anon_client.get("/cloth/list?page=2&page_size=1&sort=price").json()
    assert page["count"] == 3 and [c["name"] for c in page["results"]] == ["Later"]
    assert "page=3" in page["next"] and "page=1" in page["previous"]
    assert cheap and dear and later


def test_pages_link_to_each_other_and_past_the_last_is_a_404(anon_client, inventory_calls):
    empty = anon_client.get("/cloth/list")
    assert empty.status_code == 200
    assert empty.json() == {"count": 0, "next": None, "previous": None, "results": []}
    for name in ("A", "B", "C"):
        _cloth(name=name, brand="Acme")
    last = anon_client.get("/cloth/list?brand=Acme&page_size=2&page=2").json()
    assert [c["name"] for c in last["results"]] == ["A"] and last["next"] is None
    assert last["previous"] == "http://testserver/cloth/list?brand=Acme&page=1&page_size=2"
    first = anon_client.get(last["previous"]).json()
    assert [c["name"] for c in first["results"]] == ["C", "B"] and first["previous"] is None
    assert first["next"] == "http://testserver/cloth/list?brand=Acme&page=2&page_size=2"
    past = anon_client.get("/cloth/list?brand=Acme&page_size=2&page=3")
    assert past.status_code == 404 and past.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "query,field",
    [
        ("?sort=cheapest", "sort"),
        ("?on_sale=maybe", "on_sale"),
        ("?page=0", "page"),
        ("?page_size=1000", "page_size"),
        ("?in_stock=2", "in_stock"),
        ("?page=x", "page"),
    ],
)
def test_bad_filters_are_400_naming_the_field(anon_client, query, field):
    r = anon_client.get("/cloth/list" + query)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "validation_error" and field in r.json()["error"]["fields"]


def test_detail_has_variants_with_their_stock(anon_client, inventory_calls):
    cloth = _cloth(description="soft", purchase_limit=1, images=["https://img.example/a.jpg"])
    r = anon_client.get(f"/cloth/detail/{cloth.id}")
    assert r.status_code == 200
    body = r.json()
    assert body["description"] == "soft" and body["purchase_limit"] == 1 and body["on_sale"] is True
    assert body["images"] == ["https://img.example/a.jpg"]
    assert [(v["size"], v["stock"]) for v in body["variants"]] == [("S", 3), ("M", 0)]


def test_unknown_cloth_is_404_json(anon_client):
    for path in ("/cloth/detail/424242", "/cloth/detail/abc", "/cloth/detail/99999999999999999999"):
        r = anon_client.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_list_and_detail_are_served_from_cache_without_n_plus_1(
    anon_client, inventory_calls, django_assert_max_num_queries, django_assert_num_queries
):
    clothes = [_cloth(name=f"C{i}") for i in range(8)]
    with django_assert_max_num_queries(2):
        anon_client.get("/cloth/list?page_size=50")
    with django_assert_num_queries(0):
        anon_client.get("/cloth/list?page_size=50")
    with django_assert_max_num_queries(2):
        anon_client.get(f"/cloth/detail/{clothes[0].id}")
    with django_assert_num_queries(0):
        anon_client.get(f"/cloth/detail/{clothes[0].id}")


def test_stock_report_changes_the_shown_stock_and_invalidates_the_cache(
    anon_client, inventory_calls, django_capture_on_commit_callbacks
):
    cloth = _cloth(sizes=[("S", 1)])
    variant = cloth.variants.get()
    assert anon_client.get(f"/cloth/detail/{cloth.id}").json()["variants"][0]["stock"] == 1
    assert anon_client.get("/cloth/list?in_stock=true").json()["count"] == 1
    event = _stock_changed(cloth, variant, 0, version=5)
    with django_capture_on_commit_callbacks(execute=True):
        assert apply_event("catalog", event) is True
    assert apply_event("catalog", event) is False
    assert anon_client.get(f"/cloth/detail/{cloth.id}").json()["variants"][0]["stock"] == 0
    assert anon_client.get("/cloth/list?in_stock=true").json()["count"] == 0
    # an older report arriving late changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        apply_event("catalog", _stock_changed(cloth, variant, 1, version=4))
    assert Variant.objects.get(pk=variant.pk).shown_stock == 0


def test_a_batch_of_stock_reports_shows_the_newest_count_per_variant(
    inventory_calls, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cloth = _cloth(sizes=[("S", 30), ("M", 30)])
    s, m = cloth.variants.order_by("id")
    # a drop's burst: reports of many orders, one poll apart, not in version order
    burst = [_stock_changed(cloth, s, 30 - v, version=v) for v in (3, 1, 7, 5)]
    burst += [_stock_changed(cloth, m, 30 - v, version=v) for v in (2, 4)]
    with django_capture_on_commit_callbacks(execute=True):
        assert apply_events("catalog", burst) == 6
    assert Variant.objects.get(pk=s.pk).shown_stock == 23
    assert Variant.objects.get(pk=m.pk).shown_stock == 26
    # applied once: the same reports again change nothing
    assert apply_events("catalog", burst) == 0

    def statements(reports: int, first_version: int) -> int:
        events = [_stock_changed(cloth, s, 10, version=first_version + i) for i in range(reports)]
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as captured:
            apply_events("catalog", events)
        return len(captured)

    # the statements per batch depend on the clothes and sizes in it, not on the reports
    assert statements(2, first_version=100) == statements(20, first_version=200)


def test_internal_details_of_variants_and_clothes(internal_client, anon_client, inventory_calls):
    cloth = _cloth(sizes=[("S", 1), ("M", 2)], purchase_limit=2)
    s, m = cloth.variants.all()
    r = internal_client.post("/cloth/details", {"variant_ids": [m.id, 999999], "cloth_ids": [cloth.id]}, format="json")
    assert r.status_code == 200
    assert r.json()["variants"] == [
        {
            "variant_id": m.id,
            "cloth_id": cloth.id,
            "name": "Tee",
            "size": "M",
            "price": "59000.00",
            "sale_starts_at": None,
            "purchase_limit": 2,
        }
    ]
    assert [c["cloth_id"] for c in r.json()["clothes"]] == [cloth.id]
    assert anon_client.post("/cloth/details", {"variant_ids": [s.id]}, format="json").status_code == 404
    bad = internal_client.post("/cloth/details", {"variant_ids": ["x"]}, format="json")
    assert bad.status_code == 400 and "variant_ids.0" in bad.json()["error"]["fields"]


def test_a_cloth_without_sizes_has_one_variant(inventory_calls):
    cloth = _cloth(sizes=None)
    assert [(v.size, v.shown_stock) for v in cloth.variants.all()] == [("ONE", 0)]


def test_creating_writes_cloth_created_and_registers_with_inventory(inventory_calls):
    cloth = _cloth(purchase_limit=1)
    event = OutboxEvent.objects.get(event_type="ClothCreated")
    assert event.payload["cloth_id"] == cloth.id and event.payload["purchase_limit"] == 1
    assert [v["stock"] for v in event.payload["variants"]] == [3, 0]
    ((service, method, path, body),) = inventory_calls
    assert (service, method, path) == ("inventory", "POST", "/internal/stock")
    assert body["cloth_id"] == cloth.id and len(body["variants"]) == 2


def test_changing_price_start_or_limit_announces_cloth_updated(inventory_calls):
    cloth = _cloth()
    services.update_cloth(cloth_id=cloth.id, description="new words")
    assert not OutboxEvent.objects.filter(event_type="ClothUpdated").exists()
    services.update_cloth(cloth_id=cloth.id, purchase_limit=2, new_sizes=[("L", 5)])
    event = OutboxEvent.objects.get(event_type="ClothUpdated")
    assert event.payload["purchase_limit"] == 2 and {v["size"] for v in event.payload["variants"]} == {"S", "M", "L"}


def test_a_cached_answer_is_the_same_bytes_and_costs_no_query(anon_client, inventory_calls, django_assert_num_queries):
    cloth = _cloth()
    first = anon_client.get(f"/cloth/detail/{cloth.id}")
    with django_assert_num_queries(0):
        second = anon_client.get(f"/cloth/detail/{cloth.id}")
    assert second.status_code == 200 and second.content == first.content
    assert second["Content-Type"] == "application/json"


def test_a_process_serves_its_own_copy_while_the_versions_in_redis_stay_the_same(
    anon_client, inventory_calls, django_capture_on_commit_callbacks, django_assert_num_queries
):
    from django.core.cache import cache

    cloth = _cloth(sizes=[("S", 5)])
    anon_client.get("/cloth/list")  # the first read of an empty Redis gives it its epoch
    first = anon_client.get(f"/cloth/detail/{cloth.id}")
    assert cache.delete_pattern("*:response:*") == 2  # Redis's copy gone: this process still has its own
    with django_assert_num_queries(0):
        assert anon_client.get(f"/cloth/detail/{cloth.id}").content == first.content
    with django_capture_on_commit_callbacks(execute=True):  # a stock report bumps the cloth's version
        apply_event("catalog", _stock_changed(cloth, cloth.variants.get(), 2, version=1))
    assert anon_client.get(f"/cloth/detail/{cloth.id}").json()["variants"][0]["stock"] == 2


def test_after_redis_lost_its_data_no_process_serves_a_copy_made_before(anon_client, inventory_calls):
    """Versions count from 0 again in an empty Redis: the same key must not find an old copy."""
    from django.core.cache import cache

    cloth = _cloth(sizes=[("S", 5)])
    anon_client.get(f"/cloth/detail/{cloth.id}")
    anon_client.get(f"/cloth/detail/{cloth.id}")  # kept by the process under this Redis's epoch
    Variant.objects.filter(cloth=cloth).update(shown_stock=1)  # changed while Redis was away
    cache.clear()  # Redis restarted empty: the versions are what they were, 0
    assert anon_client.get(f"/cloth/detail/{cloth.id}").json()["variants"][0]["stock"] == 1


def test_a_cached_answer_tells_the_gateway_under_which_redis_values_it_stays_the_same(
    anon_client, inventory_calls, django_capture_on_commit_callbacks
):
    """The gateway repeats it while the keys named hold the values of the digest (gateway/answers.py)."""
    from shared.errors import SAME_ANSWER_HEADER, SAME_ANSWER_WHILE_HEADER
    from shared.redis import get_redis, values_digest

    cloth = _cloth(sizes=[("S", 5)])
    redis = get_redis()

    def condition_holds(answer) -> bool:
        digest, *keys = answer[SAME_ANSWER_WHILE_HEADER].split()
        return values_digest(redis.mget(keys)) == digest

    anon_client.get("/cloth/list")  # the first read of an empty Redis gives it its epoch
    rendered = anon_client.get(f"/cloth/detail/{cloth.id}")
    from_redis = anon_client.get(f"/cloth/detail/{cloth.id}")
    for answer in (rendered, from_redis, anon_client.get("/cloth/list")):
        assert 0 < float(answer[SAME_ANSWER_HEADER]) <= 30 and condition_holds(answer)
    keys = rendered[SAME_ANSWER_WHILE_HEADER].split()[1:]
    assert any(k.endswith("cloth:cache-epoch") for k in keys) and any(k.endswith(f":{cloth.id}:version") for k in keys)
    with django_capture_on_commit_callbacks(execute=True):  # a stock report bumps the cloth's version
        apply_event("catalog", _stock_changed(cloth, cloth.variants.get(), 2, version=1))
    assert not condition_holds(rendered)
    renewed = anon_client.get(f"/cloth/detail/{cloth.id}")
    assert renewed.json()["variants"][0]["stock"] == 2 and condition_holds(renewed)


def test_no_answer_is_marked_the_same_without_a_known_epoch_or_a_cache(anon_client, inventory_calls, settings):
    from django.core.cache import cache

    from shared.errors import SAME_ANSWER_HEADER

    cloth = _cloth()
    cache.clear()  # an empty Redis: this read gives it its epoch, and is not marked
    assert SAME_ANSWER_HEADER not in anon_client.get(f"/cloth/detail/{cloth.id}")
    assert SAME_ANSWER_HEADER in anon_client.get(f"/cloth/detail/{cloth.id}")
    assert SAME_ANSWER_HEADER not in anon_client.get("/cloth/detail/999999")  # a 404 is not kept
    settings.CATALOG_CACHE_SECONDS = 0
    assert SAME_ANSWER_HEADER not in anon_client.get(f"/cloth/detail/{cloth.id}")


def test_a_cached_answer_never_outlives_the_sale_start_it_shows():
    from catalog.response_cache import seconds_to_keep

    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    soon = (now + dt.timedelta(seconds=7.5)).isoformat()
    past = (now - dt.timedelta(days=1)).isoformat()
    assert seconds_to_keep(f'{{"sale_starts_at": "{soon}"}}'.encode(), now) == 7
    page = f'{{"results": [{{"sale_starts_at": "{past}"}}, {{"sale_starts_at": "{soon}"}}]}}'
    assert seconds_to_keep(page.encode(), now) == 7
    assert seconds_to_keep(f'{{"sale_starts_at": "{past}"}}'.encode(), now) == 30


def test_a_drop_opening_in_a_moment_is_shown_on_sale_once_it_opens(anon_client, inventory_calls):
    import time

    cloth = _cloth(sale_starts_at=timezone.now() + dt.timedelta(seconds=1.2))
    assert anon_client.get(f"/cloth/detail/{cloth.id}").json()["on_sale"] is False
    time.sleep(1.3)
    assert anon_client.get(f"/cloth/detail/{cloth.id}").json()["on_sale"] is True


def test_cache_switched_off_reads_postgresql_every_time(
    anon_client, inventory_calls, settings, django_assert_max_num_queries
):
    settings.CATALOG_CACHE_SECONDS = 0
    cloth = _cloth()
    anon_client.get(f"/cloth/detail/{cloth.id}")
    with django_assert_max_num_queries(2) as ctx:
        anon_client.get(f"/cloth/detail/{cloth.id}")
    assert len(ctx.captured_queries) >= 1


def test_a_stock_count_change_renews_only_that_detail_but_a_sell_out_renews_lists(
    anon_client, inventory_calls, django_capture_on_commit_callbacks, django_assert_num_queries
):
    cloth = _cloth(sizes=[("S", 5)])
    other = _cloth(name="Other", sizes=[("M", 5)])
    variant = cloth.variants.get()
    anon_client.get("/cloth/list")
    anon_client.get(f"/cloth/detail/{other.id}")
    with django_capture_on_commit_callbacks(execute=True):
        apply_event("catalog", _stock_changed(cloth, variant, 3, version=1))
    assert anon_client.get(f"/cloth/detail/{cloth.id}").json()["variants"][0]["stock"] == 3
    with django_assert_num_queries(0):  # still cached: a count change does not touch lists
        anon_client.get("/cloth/list")
        anon_client.get(f"/cloth/detail/{other.id}")
    with django_capture_on_commit_callbacks(execute=True):
        apply_event("catalog", _stock_changed(cloth, variant, 0, version=2))
    listed = {c["cloth_id"]: c["in_stock"] for c in anon_client.get("/cloth/list").json()["results"]}
    assert listed[cloth.id] is False and listed[other.id] is True


def test_whether_a_cloth_is_in_stock_is_read_again_only_when_a_size_ran_out(
    anon_client, inventory_calls, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cloth = _cloth(sizes=[("S", 5), ("M", 5)])
    s, m = cloth.variants.order_by("id")

    def in_stock_reads(*reports) -> int:
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as captured:
            for event in reports:
                apply_event("catalog", event)
        return sum('"shown_stock" > 0' in q["sql"] for q in captured.captured_queries)

    def listed() -> bool:
        return {c["cloth_id"]: c["in_stock"] for c in anon_client.get("/cloth/list").json()["results"]}[cloth.id]

    assert listed() is True
    assert in_stock_reads(_stock_changed(cloth, s, 4, version=1)) == 1  # still some: no second read
    assert in_stock_reads(_stock_changed(cloth, s, 0, version=2)) == 2  # S ran out: M still counts
    assert listed() is True
    assert in_stock_reads(_stock_changed(cloth, m, 0, version=3)) == 2
    assert listed() is False
    assert in_stock_reads(_stock_changed(cloth, m, 2, version=4)) == 1  # back in stock: no second read
    assert listed() is True


def test_a_cache_outage_costs_only_the_cache(
    anon_client, inventory_calls, cache_outage, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the cache versions' bump fails quietly
        cloth = _cloth(name="Outage")
    for _ in range(2):
        listed = anon_client.get("/cloth/list")
        assert listed.status_code == 200 and [c["name"] for c in listed.json()["results"]] == ["Outage"]
        detail = anon_client.get(f"/cloth/detail/{cloth.id}")
        assert detail.status_code == 200 and detail.json()["name"] == "Outage"
    with django_capture_on_commit_callbacks(execute=True):
        services.update_cloth(cloth_id=cloth.id, purchase_limit=3)
    assert anon_client.get(f"/cloth/detail/{cloth.id}").json()["purchase_limit"] == 3


@pytest.mark.django_db(transaction=True)
def test_a_stock_report_is_applied_in_the_consumers_transaction_without_a_savepoint(
    inventory_calls, django_capture_on_commit_callbacks
):
    """A savepoint is two more round trips per report; a failed report rolls the whole back anyway."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cloth = _cloth(sizes=[("S", 5)])
    variant = cloth.variants.get()
    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as captured:
        assert apply_event("catalog", _stock_changed(cloth, variant, 4, version=1)) is True
        apply_events("catalog", [_stock_changed(cloth, variant, n, version=v) for n, v in ((3, 2), (2, 3))])
    assert [q["sql"] for q in captured.captured_queries if "SAVEPOINT" in q["sql"].upper()] == []
    assert Variant.objects.get(pk=variant.pk).shown_stock == 2

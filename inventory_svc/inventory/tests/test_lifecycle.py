"""Release, sell, return, expiry, registration: each once, whoever asks twice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from inventory import gate, services
from inventory.models import ClothRule, Reservation, StockItem, StockMovement
from inventory.tests.conftest import counts, gate_avail, order_event, reserve
from shared.errors import IllegalTransition
from shared.messaging.handlers import apply_event, apply_events, batched
from shared.messaging.models import OutboxEvent


def _events(event_type: str) -> list[dict]:
    return list(OutboxEvent.objects.filter(event_type=event_type).values_list("payload", flat=True))


def test_release_gives_units_back_once(cloth):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    services.release_reservation(order_id=100, reason="cancelled")
    services.release_reservation(order_id=100, reason="cancelled")
    assert counts(11) == (5, 0, 0) and gate_avail(1, 11) == 5
    assert StockMovement.objects.filter(order_id=100, kind="release").count() == 1
    assert len(_events("StockReleased")) == 1


def test_sell_moves_reserved_to_sold_once(cloth):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    assert services.sell_reservation(order_id=100)["status"] == "SOLD"
    assert services.sell_reservation(order_id=100)["status"] == "SOLD"
    assert counts(11) == (3, 0, 2) and gate_avail(1, 11) == 3
    assert StockMovement.objects.filter(order_id=100, kind="sell").count() == 1
    with pytest.raises(IllegalTransition):
        services.release_reservation(order_id=100, reason="too late")


def test_payment_after_release_takes_the_units_again_when_still_free(cloth):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    services.release_reservation(order_id=100, reason="expired")
    assert services.sell_reservation(order_id=100)["status"] == "SOLD"
    assert counts(11) == (3, 0, 2) and gate_avail(1, 11) == 3
    call_command("check_invariants")


def test_payment_after_release_never_resells_a_unit_someone_else_got(cloth):
    cloth(1, {11: 1})
    reserve(100, 7, (11, 1))
    services.release_reservation(order_id=100, reason="expired")
    reserve(101, 8, (11, 1))
    assert services.sell_reservation(order_id=100)["status"] == "SELL_FAILED"
    assert services.sell_reservation(order_id=100)["status"] == "SELL_FAILED"
    assert counts(11) == (0, 1, 0) and gate_avail(1, 11) == 0
    failed = _events("StockSellFailed")
    assert len(failed) == 1 and failed[0]["order_id"] == 100
    call_command("check_invariants")


def test_return_puts_sold_units_back_on_sale_once(cloth):
    cloth(1, {11: 5}, limit=2)
    reserve(100, 7, (11, 2))
    services.sell_reservation(order_id=100)
    services.return_reservation(order_id=100)
    services.return_reservation(order_id=100)
    assert counts(11) == (5, 0, 0) and gate_avail(1, 11) == 5
    assert gate.snapshot(1)["bought"] == {}
    assert len(_events("StockReturned")) == 1


def test_reservations_past_deadline_and_grace_are_released(cloth, settings):
    settings.INVENTORY_RESERVATION_GRACE_SECONDS = 120
    cloth(1, {11: 5})
    past = timezone.now() - dt.timedelta(seconds=200)
    services.reserve_stock(order_id=100, member_id=7, lines=[{"variant_id": 11, "quantity": 1}], deadline=past)
    services.reserve_stock(
        order_id=101,
        member_id=8,
        lines=[{"variant_id": 11, "quantity": 1}],
        deadline=timezone.now() - dt.timedelta(seconds=60),
    )  # still in its grace
    assert services.release_expired_reservations() == 1
    assert Reservation.objects.get(order_id=100).state == "RELEASED"
    assert Reservation.objects.get(order_id=101).state == "ACTIVE"
    assert counts(11) == (4, 1, 0) and gate_avail(1, 11) == 4


def test_register_is_idempotent_for_known_variants_and_updates_the_rule(cloth):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    start = timezone.now() + dt.timedelta(hours=1)
    services.register_stock(
        cloth_id=1,
        sale_starts_at=start,
        purchase_limit=3,
        variants=[{"variant_id": 11, "stock": 999}, {"variant_id": 12, "stock": 4}],
    )
    assert counts(11) == (3, 2, 0) and counts(12) == (4, 0, 0)
    assert gate_avail(1, 12) == 4
    assert gate.snapshot(1)["rule"] == {"start_ms": int(start.timestamp() * 1000), "limit": 3}
    assert ClothRule.objects.get(cloth_id=1).purchase_limit == 3


def test_restock_and_correction_land_in_the_ledger_and_the_gate(cloth):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 4))
    services.restock(variant_id=11, quantity=10, reason="truck", actor="ops")
    services.correct_stock(variant_id=11, delta=-3, reason="damaged", actor="ops")
    assert counts(11) == (8, 4, 0) and gate_avail(1, 11) == 8
    with pytest.raises(Exception):  # noqa: B017 - any refusal; the totals below must stay
        services.correct_stock(variant_id=11, delta=-9, reason="too many", actor="ops")
    assert StockItem.objects.get(variant_id=11).total == 12
    call_command("check_invariants")


# --- consumers: each event once -------------------------------------------------------------


def test_order_events_applied_twice_change_stock_once(cloth):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    reserve(101, 8, (11, 1))
    paid = order_event("OrderPaid", 100)
    cancelled = order_event("OrderCancelled", 101, reason="cancelled")
    for event in (paid, paid, cancelled, cancelled):
        apply_event("inventory", event)
    assert counts(11) == (3, 0, 2)
    refunded = order_event("OrderRefunded", 100, restock=True)
    apply_event("inventory", refunded)
    apply_event("inventory", refunded)
    assert counts(11) == (5, 0, 0) and gate_avail(1, 11) == 5
    assert StockMovement.objects.filter(kind="return").count() == 1


def test_the_same_release_through_another_event_changes_nothing_more(cloth):
    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    apply_event("inventory", order_event("OrderExpired", 100, reason="payment_deadline_passed"))
    apply_event("inventory", order_event("OrderPaymentFailed", 100, reason="declined"))
    assert counts(11) == (5, 0, 0)
    assert StockMovement.objects.filter(kind="release").count() == 1


def test_an_order_paid_is_sold_in_the_consumers_transaction_without_a_savepoint(cloth):
    """A savepoint is two more round trips per payment; a failed sale rolls the whole back anyway."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    with CaptureQueriesContext(connection) as captured:
        assert apply_event("inventory", order_event("OrderPaid", 100)) is True
    assert [q["sql"] for q in captured.captured_queries if "SAVEPOINT" in q["sql"].upper()] == []
    assert counts(11) == (3, 0, 2)


def test_a_polls_paid_orders_are_sold_in_one_transaction_each_as_on_its_own(cloth):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # the consumer hands a poll's events of such types to apply_events together
    assert batched("OrderPaid")
    cloth(1, {11: 5})
    reserve(100, 7, (11, 2))
    reserve(101, 8, (11, 1))
    paid = order_event("OrderPaid", 100)
    events = [paid, order_event("OrderPaid", 101), paid, order_event("OrderPaid", 555, member_id=9)]
    with CaptureQueriesContext(connection) as captured:
        assert apply_events("inventory", events) == 3  # the redelivered one is not applied twice
    statements = [q["sql"].split()[0] for q in captured.captured_queries]
    assert statements.count("BEGIN") == 1 and statements.count("COMMIT") == 1, statements
    assert counts(11) == (2, 0, 3)
    assert [e["order_id"] for e in _events("StockSold")] == [100, 101]
    assert [e["order_id"] for e in _events("StockSellFailed")] == [555]  # paid, nothing reserved


def _writes(captured) -> list[str]:
    return [
        q["sql"].split()[0] for q in captured.captured_queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "WITH")
    ]


def test_a_sale_and_a_release_write_after_their_counters_in_one_statement(cloth):
    """The counters, then the reservation's new state with its ledger rows and events together."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cloth(1, {11: 5, 12: 5})
    reserve(100, 7, (11, 2))
    reserve(101, 8, (12, 1))
    with CaptureQueriesContext(connection) as sold:
        apply_event("inventory", order_event("OrderPaid", 100))
    inbox_claim, *sale = _writes(sold)
    assert sale == ["UPDATE", "WITH"], sold.captured_queries
    with CaptureQueriesContext(connection) as released:
        services.release_reservation(order_id=101, reason="cancelled")
    assert _writes(released) == ["UPDATE", "WITH"], released.captured_queries
    assert counts(11) == (3, 0, 2) and counts(12) == (5, 0, 0)
    assert StockMovement.objects.filter(order_id=100, kind="sell").count() == 1
    assert StockMovement.objects.filter(order_id=101, kind="release").count() == 1
    assert len(_events("StockSold")) == 1 and len(_events("StockReleased")) == 1
    assert Reservation.objects.get(order_id=100).state == "SOLD"
    assert Reservation.objects.get(order_id=101).state == "RELEASED"


def test_a_sale_of_several_lines_moves_each_and_announces_them_together(cloth):
    cloth(1, {11: 5, 12: 5})
    cloth(2, {21: 5})
    reserve(100, 7, (11, 2), (12, 1), (21, 3))
    assert services.sell_reservation(order_id=100)["status"] == "SOLD"
    assert counts(11) == (3, 0, 2) and counts(12) == (4, 0, 1) and counts(21) == (2, 0, 3)
    assert gate_avail(1, 11) == 3 and gate_avail(2, 21) == 2
    moved = StockMovement.objects.filter(order_id=100, kind="sell").values_list("variant_id", "quantity")
    assert sorted(moved) == [(11, 2), (12, 1), (21, 3)]
    (sold,) = _events("StockSold")
    assert sorted((ln["variant_id"], ln["quantity"]) for ln in sold["lines"]) == [(11, 2), (12, 1), (21, 3)]
    call_command("check_invariants")


def test_a_sale_the_counters_refuse_changes_nothing(cloth):
    """PostgreSQL's counters disagree with its reservation (one line's units are not held):
    the sale is refused, naming that variant, and the line before it is not sold either."""
    cloth(1, {11: 5, 12: 5})
    reserve(100, 7, (11, 2), (12, 1))
    StockItem.objects.filter(variant_id=12).update(reserved=0)
    with pytest.raises(IllegalTransition, match="variant 12"):
        services.sell_reservation(order_id=100)
    assert counts(11) == (3, 2, 0) and counts(12) == (5, 0, 0)
    assert Reservation.objects.get(order_id=100).state == "ACTIVE"
    assert not StockMovement.objects.filter(order_id=100, kind="sell").exists()
    assert _events("StockSold") == []
    assert gate_avail(1, 11) == 3  # the gate's records are sold only after a sale commits


def test_a_paid_order_without_reservation_asks_for_a_refund(cloth):
    cloth(1, {11: 5})
    apply_event("inventory", order_event("OrderPaid", 555, member_id=7))
    assert _events("StockSellFailed")[0]["order_id"] == 555


def test_cloth_created_event_registers_stock_once(transactional_db):
    import uuid

    from shared.messaging.events import Event

    event = Event(
        event_id=uuid.uuid4(),
        event_type="ClothCreated",
        event_version=1,
        occurred_at=timezone.now(),
        aggregate_type="cloth",
        aggregate_id="3",
        topic="catalog",
        payload={
            "cloth_id": 3,
            "name": "Tee",
            "price": "59000.00",
            "sale_starts_at": None,
            "purchase_limit": 1,
            "variants": [{"variant_id": 31, "size": "S", "stock": 10}],
        },
    )
    assert apply_event("inventory", event) is True
    assert apply_event("inventory", event) is False
    assert counts(31) == (10, 0, 0) and gate_avail(3, 31) == 10
    assert StockMovement.objects.filter(variant_id=31).count() == 1


def test_payment_for_an_order_released_before_it_was_reserved_asks_for_a_refund_once(cloth):
    cloth(1, {11: 5})
    services.release_reservation(order_id=300, reason="order_not_placed")
    assert services.sell_reservation(order_id=300)["status"] == "SELL_FAILED"
    assert services.sell_reservation(order_id=300)["status"] == "SELL_FAILED"
    assert [e["reason"] for e in _events("StockSellFailed")] == ["no_reservation"]
    assert counts(11) == (5, 0, 0)

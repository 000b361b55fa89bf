"""The event contracts: what they put on the wire, what they accept, and the pages made from them."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from shared.contracts import CONTRACTS, PRODUCERS, ContractError, from_payload, to_payload
from shared.contracts import docs as contract_docs
from shared.contracts.inventory import ReservedLine, SellFailure, StockReserved, StockSellFailed
from shared.contracts.order import OrderLine, OrderPlaced, RefundReason, RefundRequested
from shared.messaging.handlers import handles


def test_the_pages_in_docs_events_are_what_the_contracts_make():
    assert contract_docs.drifted() == [], f"run: {contract_docs.COMMAND}"


def test_every_handler_of_the_services_names_a_contract_and_every_page_lists_its_consumers():
    found = contract_docs.handlers()
    assert {(h.service, h.event_type) for h in found} >= {
        ("catalog", "StockChanged"),
        ("inventory", "ClothCreated"),
        ("inventory", "OrderPaid"),
        ("order", "PaymentCompleted"),
        ("order", "StockSellFailed"),
        ("payment", "RefundRequested"),
    }
    assert all(h.effect for h in found), "every handler says what it does (its docstring)"
    assert "| `OrderPaid` | 1 | `order_id` (order) |" in contract_docs.pages()["order.md"]


def test_the_wire_keeps_its_shape_decimals_as_strings_and_times_as_isoformat():
    deadline = dt.datetime(2026, 11, 25, 20, 0, 0, 123456, tzinfo=dt.UTC)
    placed = OrderPlaced(
        order_id=42,
        member_id=7,
        lines=[OrderLine(variant_id=101, cloth_id=1, quantity=1, unit_price=Decimal("59000.00"))],
        total=Decimal("59000.00"),
        payment_deadline=deadline,
    )
    payload = to_payload(placed)
    assert json.dumps(payload) == json.dumps(
        {
            "order_id": 42,
            "member_id": 7,
            "lines": [{"variant_id": 101, "cloth_id": 1, "quantity": 1, "unit_price": "59000.00"}],
            "total": "59000.00",
            "payment_deadline": "2026-11-25T20:00:00.123456+00:00",
        }
    )
    assert from_payload(OrderPlaced, payload, version=1) == placed
    assert placed.aggregate_id == "42"


def test_names_travel_as_their_values_and_come_back_as_names():
    refund = RefundRequested(
        order_id=1, member_id=2, payment_id=None, amount=Decimal("1.50"), reason=RefundReason.ADMIN
    )
    assert to_payload(refund)["reason"] == "admin" and to_payload(refund)["payment_id"] is None
    assert from_payload(RefundRequested, to_payload(refund), version=1).reason is RefundReason.ADMIN
    failed = StockSellFailed(order_id=1, member_id=None, reason=SellFailure.NO_RESERVATION)
    assert to_payload(failed) == {"order_id": 1, "member_id": None, "reason": "no_reservation", "variant_id": None}
    with pytest.raises(ContractError, match=r"Invalid enum value 'lost' - at `\$.reason`"):
        from_payload(StockSellFailed, {**to_payload(failed), "reason": "lost"}, version=1)


@pytest.mark.parametrize("contract", sorted(CONTRACTS.values(), key=lambda c: c.event_type()), ids=str)
def test_each_contract_names_its_topic_key_and_version_and_refuses_another_version(contract):
    assert contract.topic and contract.aggregate_type and contract.version >= 1
    assert contract.key in contract.__struct_fields__, "the key is a payload field"
    with pytest.raises(ContractError, match=f"{contract.event_type()} version {contract.version + 1} is not known"):
        from_payload(contract, {}, version=contract.version + 1)


def test_a_missing_field_is_named():
    with pytest.raises(ContractError, match=r"StockReserved payload does not fit .* `deadline`"):
        from_payload(
            StockReserved,
            {
                "order_id": 1,
                "member_id": 2,
                "lines": [to_payload_line(ReservedLine(variant_id=1, cloth_id=1, quantity=1))],
            },
            version=1,
        )


def to_payload_line(line: ReservedLine) -> dict:
    return {"variant_id": line.variant_id, "cloth_id": line.cloth_id, "quantity": line.quantity}


def test_one_module_per_producer_and_one_contract_per_name():
    assert set(PRODUCERS) == {"member", "catalog", "order", "inventory", "payment"}
    assert sum(len(m.EVENTS) for m in PRODUCERS.values()) == len(CONTRACTS)


def test_handlers_are_registered_by_contract_not_by_name():
    with pytest.raises(TypeError, match="takes an event contract"):
        handles("OrderPaid")


def test_record_event_takes_a_contract_not_a_dict():
    from shared.messaging.events import record_event

    with pytest.raises(TypeError, match="takes an event contract"):
        record_event({"order_id": 1})

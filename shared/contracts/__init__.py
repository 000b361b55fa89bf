"""The events the services send each other, as typed contracts: one module per producer.

Producers record instances (``shared.messaging.events.record_event(OrderPaid(...))``),
handlers are registered by contract (``@handles(OrderPaid)``) and receive an ``Event``
whose ``payload`` is the instance. ``docs/events/`` is generated from these modules
(``python3 manage_all.py events-docs``); a test fails when the pages drift from them.
"""

from __future__ import annotations

from shared.contracts import catalog, inventory, member, order, payment
from shared.contracts.base import Contract, ContractError, Shape, from_payload, to_payload

#: producer service -> its contracts module
PRODUCERS = {"member": member, "catalog": catalog, "order": order, "inventory": inventory, "payment": payment}

#: every event type -> its contract
CONTRACTS: dict[str, type[Contract]] = {c.event_type(): c for m in PRODUCERS.values() for c in m.EVENTS}

__all__ = ["CONTRACTS", "PRODUCERS", "Contract", "ContractError", "Shape", "from_payload", "to_payload"]

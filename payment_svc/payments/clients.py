"""The payment service's call to the order service: the order as the server knows it.

Tests patch :func:`get_order`: it is the boundary to the other service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from shared import upstream
from shared.errors import NotFound, ShopError


@dataclass(frozen=True)
class OrderInfo:
    order_id: int
    member_id: int
    status: str
    total: Decimal
    payment_deadline: dt.datetime


def get_order(order_id: int) -> OrderInfo:
    """The order from ``GET /internal/orders/{order_id}``; a missing one is NotFound."""
    try:
        raw = upstream.call_ok("order", "GET", f"/internal/orders/{order_id}", idempotent=True)
    except ShopError as exc:
        if exc.status_code == 404:
            raise NotFound("No such order.") from None
        raise
    return OrderInfo(
        order_id=int(raw["order_id"]),
        member_id=int(raw["member_id"]),
        status=str(raw["status"]),
        total=Decimal(str(raw["total"])),
        payment_deadline=dt.datetime.fromisoformat(str(raw["payment_deadline"]).replace("Z", "+00:00")),
    )


def hold_order(*, order_id: int, payment_id: int) -> None:
    """Hold the order for this payment before charging it (``POST /internal/orders/{id}/payment-hold``).

    The order service refuses (409 ``illegal_transition``) an order that no longer awaits
    payment, and refuses a cancel while the hold stands. Idempotent per payment.
    """
    try:
        upstream.call_ok(
            "order",
            "POST",
            f"/internal/orders/{order_id}/payment-hold",
            body={"payment_id": payment_id},
            idempotent=True,  # the same payment holding again changes nothing
        )
    except ShopError as exc:
        if exc.status_code == 404:
            raise NotFound("No such order.") from None
        raise

"""Reads of the payment service that are more than a ``.get()``."""

from __future__ import annotations

import datetime as dt

from payments.models import Payment, PaymentStatus


def charged_payments(*, since: dt.datetime, until: dt.datetime, limit: int = 5000) -> list[dict]:
    """Payments that hold a buyer's money (COMPLETED, not refunded) and last changed in the window."""
    rows = (
        Payment.objects.filter(status=PaymentStatus.COMPLETED, updated_at__gte=since, updated_at__lt=until)
        .order_by("updated_at", "payment_id")
        .values("payment_id", "order_id", "member_id", "amount", "updated_at")[:limit]
    )
    return [{**row, "amount": str(row["amount"]), "updated_at": row["updated_at"].isoformat()} for row in rows]

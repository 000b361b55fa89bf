"""After a run: wait for the saga to settle, then check the shop's invariants and say which broke.

"Settled" means every service's outbox is drained, no order waits in PENDING_PAYMENT past
its deadline, every PAID order has its charge and every charge its PAID (or refunded)
order, and the inventory's counts and the catalog's shown stock of the run's clothes
agree with the orders. The time from the end of the load until then is the saga's
settle time. Then the inventory's own ``check_invariants`` command (Redis gate against
PostgreSQL, conservation, ledger) must pass. The databases are read with psycopg
directly: a read-only look that costs the services nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from stack import Stack

from shared.contracts.order import SOLD_STATES, OrderStatus
from shared.topology import SERVICES

#: the payment service's states in which money was taken (its `CHARGED_STATES`)
CHARGED = ("COMPLETED", "REFUND_PENDING", "REFUNDED")
#: order states whose units were sold (stock committed)
SOLD_ORDER_STATES = tuple(s.value for s in SOLD_STATES)
PENDING = OrderStatus.PENDING_PAYMENT.value
#: the expiry sweep runs every few seconds: an order this far past its deadline is a leak
EXPIRY_SLACK_SECONDS = 15


@dataclass
class Check:
    name: str
    ok: bool
    detail: Any = None


@dataclass
class Verdict:
    settled: bool
    settle_seconds: float | None
    checks: list[Check] = field(default_factory=list)
    orders: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.settled and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "settled": self.settled,
            "settle_seconds": self.settle_seconds,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def _rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def dead_letters(stack: Stack) -> dict[str, int]:
    """Open dead letters per service: a run that adds some lost events."""
    found = {}
    for service in SERVICES:
        try:
            found[service] = _rows(
                stack.database_url(service), "SELECT count(*) FROM messaging_deadletter WHERE state = 'OPEN'"
            )[0][0]
        except psycopg.errors.UndefinedTable:
            found[service] = 0
    return found


class Snapshot:
    """One look at the databases, scoped to the orders placed since the run started and the run's clothes."""

    def __init__(self, stack: Stack, *, since: float, cloth_ids: list[int]):
        self.stack, self.since, self.cloth_ids = stack, since, cloth_ids
        order_db = stack.database_url("order")
        self.outbox = {
            s: _rows(stack.database_url(s), "SELECT count(*) FROM messaging_outboxevent WHERE published_at IS NULL")[0][
                0
            ]
            for s in SERVICES
        }
        self.by_status = dict(
            _rows(
                order_db,
                "SELECT status, count(*) FROM orders_order WHERE created_at >= to_timestamp(%s) GROUP BY status",
                (since,),
            )
        )
        self.overdue = _rows(
            order_db,
            "SELECT count(*) FROM orders_order WHERE status = %s "
            "AND payment_deadline < now() - make_interval(secs => %s)",
            (PENDING, EXPIRY_SLACK_SECONDS),
        )[0][0]
        self.pending_not_due = _rows(
            order_db,
            "SELECT count(*), max(payment_deadline) FROM orders_order "
            "WHERE status = %s AND created_at >= to_timestamp(%s) "
            "AND payment_deadline >= now() - make_interval(secs => %s)",
            (PENDING, since, EXPIRY_SLACK_SECONDS),
        )[0]
        orders = dict(
            _rows(order_db, "SELECT order_id, status FROM orders_order WHERE created_at >= to_timestamp(%s)", (since,))
        )
        payments = _rows(
            stack.database_url("payment"),
            "SELECT order_id, status FROM payments_payment WHERE created_at >= to_timestamp(%s)",
            (since,),
        )
        charged = {o for o, s in payments if s in CHARGED}
        self.paid_without_charge = sorted(o for o, s in orders.items() if s in SOLD_ORDER_STATES and o not in charged)[
            :20
        ]
        # A charge whose order ended otherwise must be on its way back (REFUND_PENDING/REFUNDED), not kept.
        self.charge_without_paid = sorted(
            o
            for o, s in payments
            if s == "COMPLETED" and orders.get(o, OrderStatus.PAID) not in (*SOLD_ORDER_STATES, OrderStatus.REFUNDED)
        )[:20]
        self.payments_by_status: dict[str, int] = {}
        for _, s in payments:
            self.payments_by_status[s] = self.payments_by_status.get(s, 0) + 1
        self.stock = self._stock(order_db) if cloth_ids else []

    def _stock(self, order_db: str) -> list[dict[str, Any]]:
        """Per variant of the run's clothes: inventory counts, what the orders say they should be, shown stock."""
        inv = _rows(
            self.stack.database_url("inventory"),
            "SELECT variant_id, total, reserved, sold FROM inventory_stockitem WHERE cloth_id = ANY(%s)",
            (self.cloth_ids,),
        )
        expected = _rows(
            order_db,
            "SELECT l.variant_id, "
            "coalesce(sum(l.quantity) FILTER (WHERE o.status = ANY(%s)), 0), "
            "coalesce(sum(l.quantity) FILTER (WHERE o.status = %s), 0) "
            "FROM orders_orderline l JOIN orders_order o ON o.order_id = l.order_id "
            "WHERE l.cloth_id = ANY(%s) GROUP BY l.variant_id",
            (list(SOLD_ORDER_STATES), PENDING, self.cloth_ids),
        )
        shown = dict(
            _rows(
                self.stack.database_url("catalog"),
                "SELECT id, shown_stock FROM catalog_variant WHERE cloth_id = ANY(%s)",
                (self.cloth_ids,),
            )
        )
        want = {v: (sold, reserved) for v, sold, reserved in expected}
        out = []
        for variant, total, reserved, sold in inv:
            exp_sold, exp_reserved = want.get(variant, (0, 0))
            out.append(
                {
                    "variant_id": variant,
                    "total": total,
                    "reserved": reserved,
                    "sold": sold,
                    "orders_sold": int(exp_sold),
                    "orders_reserved": int(exp_reserved),
                    "shown_stock": shown.get(variant),
                }
            )
        return out

    # ------------------------------------------------------------------ judgements

    def oversold(self) -> list[dict[str, Any]]:
        return [s for s in self.stock if s["sold"] + s["reserved"] > s["total"]]

    def stock_mismatch(self) -> list[dict[str, Any]]:
        return [s for s in self.stock if (s["sold"], s["reserved"]) != (s["orders_sold"], s["orders_reserved"])]

    def shown_mismatch(self) -> list[dict[str, Any]]:
        return [s for s in self.stock if s["shown_stock"] != s["total"] - s["reserved"] - s["sold"]]

    def settled(self) -> bool:
        return (
            not any(self.outbox.values())
            and self.overdue == 0
            and not self.paid_without_charge
            and not self.charge_without_paid
            and not self.stock_mismatch()
            and not self.shown_mismatch()
        )


def wait_and_check(
    stack: Stack, *, since: float, cloth_ids: list[int], dead_before: dict[str, int], timeout: float = 120.0, log=print
) -> Verdict:
    """Poll until the saga settles (or ``timeout``), then run every check on the final state."""
    started = time.monotonic()
    snap = Snapshot(stack, since=since, cloth_ids=cloth_ids)
    while not snap.settled() and time.monotonic() - started < timeout:
        time.sleep(0.5)
        snap = Snapshot(stack, since=since, cloth_ids=cloth_ids)
    settled = snap.settled()
    settle_seconds = round(time.monotonic() - started, 2) if settled else None
    log(f"  saga {'settled' if settled else 'NOT settled'} after {time.monotonic() - started:.1f}s")

    checks = [
        Check("no oversell (sold + reserved <= total, PostgreSQL)", not snap.oversold(), snap.oversold()[:10]),
        Check("outboxes drained", not any(snap.outbox.values()), snap.outbox),
        Check("no order pending past its deadline", snap.overdue == 0, {"overdue": snap.overdue}),
        Check("every PAID order has its charge", not snap.paid_without_charge, snap.paid_without_charge),
        Check(
            "every charge belongs to a PAID order or is refunded",
            not snap.charge_without_paid,
            snap.charge_without_paid,
        ),
        Check(
            "inventory counts match the orders (events applied once)",
            not snap.stock_mismatch(),
            snap.stock_mismatch()[:10],
        ),
        Check("catalog shows the inventory's available stock", not snap.shown_mismatch(), snap.shown_mismatch()[:10]),
    ]
    dead_after = dead_letters(stack)
    new_dead = {s: dead_after[s] - dead_before.get(s, 0) for s in dead_after if dead_after[s] > dead_before.get(s, 0)}
    checks.append(Check("no new dead letters", not new_dead, new_dead))
    code, report = _inventory_command(stack)
    checks.append(
        Check(
            "inventory check_invariants exits 0",
            code == 0,
            {
                "exit": code,
                "variants_checked": report.get("variants_checked"),
                "differences": (report.get("differences") or [])[:10],
            },
        )
    )
    pending_count, latest_deadline = snap.pending_not_due
    verdict = Verdict(settled, settle_seconds, checks)
    verdict.orders = {
        "by_status": snap.by_status,
        "payments_by_status": snap.payments_by_status,
        "pending_not_yet_due": pending_count,
        "latest_pending_deadline": latest_deadline.isoformat() if latest_deadline else None,
        "stock": snap.stock,
    }
    return verdict


def _inventory_command(stack: Stack) -> tuple[int, dict]:
    try:
        return stack.manage_json("inventory", "check_invariants")
    except ValueError as exc:
        return 99, {"error": str(exc)[:500]}

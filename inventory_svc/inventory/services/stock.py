"""A variant's total: registering a cloth's variants, restocking, correcting a count."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

from inventory import gate, selectors
from inventory.models import ClothRule, MovementKind, StockItem
from inventory.services.counters import Line, move, stock_changed
from inventory.services.gate_steps import after_commit
from inventory.services.ledger import write_ledger
from shared.errors import NotFound, ValidationFailed

logger = logging.getLogger(__name__)


def register_stock(
    *,
    cloth_id: int,
    sale_starts_at: dt.datetime | None,
    purchase_limit: int | None,
    variants: list[dict],
    name: str = "",
    actor: str = "catalog",
) -> dict:
    """Make the cloth's variants known with their first stock, and its rule; load its gate.

    Idempotent: a known variant keeps its counts (restocks go through :func:`restock`), so
    the catalog's synchronous call and its ``ClothCreated`` event may both arrive.
    """
    with transaction.atomic():
        rule, _ = ClothRule.objects.select_for_update().get_or_create(cloth_id=cloth_id)
        rule.sale_starts_at = sale_starts_at
        rule.purchase_limit = purchase_limit or 0
        rule.save()
        wanted = {int(v["variant_id"]): int(v["stock"]) for v in variants}
        known = dict(StockItem.objects.filter(variant_id__in=wanted).values_list("variant_id", "cloth_id"))
        elsewhere = sorted(v for v, c in known.items() if c != cloth_id)
        if elsewhere:
            raise ValidationFailed(
                f"Variant {elsewhere[0]} belongs to another cloth.",
                fields={"variants": [f"variant {elsewhere[0]} belongs to another cloth"]},
            )
        sizes = {int(v["variant_id"]): v.get("size") or "" for v in variants}
        new = [
            StockItem(variant_id=v, cloth_id=cloth_id, total=stock, cloth_name=name, size=sizes[v])
            for v, stock in wanted.items()
            if v not in known
        ]
        StockItem.objects.bulk_create(new)
        _rename_known(cloth_id, name, {v: sizes[v] for v in known})
        new_lines = [Line(i.variant_id, cloth_id, i.total) for i in new if i.total]
        write_ledger(new_lines, MovementKind.RESTOCK, order_id=None, cause="registered", actor=actor)
        if new:
            stock_changed(
                [
                    {
                        "variant_id": i.variant_id,
                        "cloth_id": cloth_id,
                        "total": i.total,
                        "available": i.total,
                        "version": 0,
                    }
                    for i in new
                ]
            )
        start_ms, limit = gate._rule_ms(rule)
        after_commit(_load_registered, cloth_id, start_ms, limit, [(i.variant_id, i.total) for i in new])
    items = selectors.stock_of_variants(list(wanted), from_cache=False)
    return {"cloth_id": cloth_id, "created": [i.variant_id for i in new], "variants": items}


def _rename_known(cloth_id: int, name: str, sizes: dict[int, str]) -> None:
    """Keep the names people read in the admin as the catalog last said them (never the counts)."""
    if name:
        StockItem.objects.filter(cloth_id=cloth_id).exclude(cloth_name=name).update(cloth_name=name)
    for variant_id, size in sizes.items():
        if size:
            StockItem.objects.filter(variant_id=variant_id).exclude(size=size).update(size=size)


def _load_registered(cloth_id: int, start_ms: int, limit: int, new: list[tuple[int, int]]) -> None:
    if gate.is_loaded(cloth_id):
        gate.set_rule(cloth_id=cloth_id, start_ms=start_ms, limit=limit)
        for variant_id, stock in new:
            # Set, never add: a load from PostgreSQL that ran since our commit already counted
            # these units (the catalog's call and its ClothCreated event arrive together).
            gate.add_variant(cloth_id=cloth_id, variant_id=variant_id, available=stock)
    else:
        gate.ensure_loaded(cloth_id)


def restock(*, variant_id: int, quantity: int, reason: str = "", actor: str = "") -> dict:
    """Add ``quantity`` units to a variant (ledger: restock)."""
    if quantity <= 0:
        raise ValidationFailed("A restock adds at least one unit.", fields={"quantity": ["must be at least 1"]})
    return _change_total(variant_id=variant_id, delta=quantity, kind=MovementKind.RESTOCK, reason=reason, actor=actor)


def correct_stock(*, variant_id: int, delta: int, reason: str, actor: str = "") -> dict:
    """Correct a variant's total by ``delta`` (a count found wrong); never below reserved + sold."""
    if delta == 0:
        raise ValidationFailed("A correction changes the total.", fields={"delta": ["must not be 0"]})
    if not reason:
        raise ValidationFailed("Say why the count is corrected.", fields={"reason": ["required for a correction"]})
    return _change_total(variant_id=variant_id, delta=delta, kind=MovementKind.CORRECT, reason=reason, actor=actor)


def _change_total(*, variant_id: int, delta: int, kind: str, reason: str, actor: str) -> dict:
    with transaction.atomic():
        row = move(variant_id, delta, "total")
        if row is None:
            if not StockItem.objects.filter(variant_id=variant_id).exists():
                raise NotFound(f"No stock for variant {variant_id}.")
            raise ValidationFailed(
                "The total cannot go below the units reserved and sold.",
                fields={"quantity": ["would leave fewer units than reserved + sold"]},
            )
        write_ledger([Line(variant_id, row["cloth_id"], delta)], kind, order_id=None, cause=reason or kind, actor=actor)
        stock_changed([row])
        after_commit(gate.adjust, cloth_id=row["cloth_id"], variant_id=variant_id, delta=delta)
        transaction.on_commit(lambda: selectors.invalidate_stock_cache([variant_id]))
    logger.info("%s of variant %s by %+d (%s, %s)", kind, variant_id, delta, reason, actor)
    return row

"""Every change of the catalog: create a cloth (a drop), edit it, follow the inventory's stock.

A new cloth's stock is registered with the inventory twice on purpose: synchronously, so the
operator's command returns with the gate loaded, and through ``ClothCreated`` in the outbox,
so it arrives even when the inventory was down. The inventory applies it once.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction

from catalog import selectors
from catalog.models import Cloth, Variant
from shared import upstream
from shared.contracts import to_payload
from shared.contracts.catalog import ClothCreated, ClothUpdated, ClothVariant
from shared.errors import NotFound, ShopError, ValidationFailed
from shared.messaging.events import record_event
from shared.reads import prepare

logger = logging.getLogger(__name__)

ONE_SIZE = "ONE"
_RULE_FIELDS = ("price", "sale_starts_at", "purchase_limit")
EDITABLE_FIELDS = (
    "name",
    "brand",
    "category",
    "description",
    "price",
    "image_url",
    "images",
    "sale_starts_at",
    "purchase_limit",
)


def _clean(
    *, name: str, price: Any, images: list[str] | None, purchase_limit: int | None, sizes: list[tuple[str, int]] | None
) -> tuple[Decimal, list[tuple[str, int]]]:
    errors: dict[str, list[str]] = {}
    if not name or not name.strip():
        errors["name"] = ["required"]
    try:
        amount = Decimal(str(price))
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")) or amount >= 10**10:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        errors["price"] = ["a non-negative amount with at most 2 decimals"]
        amount = Decimal(0)
    if purchase_limit is not None and purchase_limit < 0:
        errors["purchase_limit"] = ["must be 0 (no limit) or more"]
    if images is not None and (not isinstance(images, list) or not all(isinstance(u, str) for u in images)):
        errors["images"] = ["a list of URLs"]
    clean_sizes: list[tuple[str, int]] = []
    if sizes is not None:
        seen = set()
        for size, stock in sizes:
            size = (size or "").strip()
            if not size or len(size) > 32 or size in seen or not isinstance(stock, int) or stock < 0:
                errors["sizes"] = [f"bad size entry {size!r}:{stock!r} (distinct sizes, stock >= 0)"]
                break
            seen.add(size)
            clean_sizes.append((size, stock))
    if errors:
        raise ValidationFailed(fields=errors)
    return amount, clean_sizes or [(ONE_SIZE, 0)]


def _cloth_event(event: type[ClothCreated] | type[ClothUpdated], cloth: Cloth) -> ClothCreated | ClothUpdated:
    return event(
        cloth_id=cloth.id,
        name=cloth.name,
        brand=cloth.brand,
        category=cloth.category,
        price=cloth.price,
        sale_starts_at=cloth.sale_starts_at,
        purchase_limit=cloth.purchase_limit or 0,
        variants=[
            ClothVariant(variant_id=v.id, size=v.size, stock=max(0, v.shown_stock)) for v in cloth.variants.all()
        ],
    )


def create_cloth(
    *,
    name: str,
    price: Any,
    sizes: list[tuple[str, int]] | None = None,
    brand: str = "",
    category: str = "",
    description: str = "",
    image_url: str = "",
    images: list[str] | None = None,
    sale_starts_at: dt.datetime | None = None,
    purchase_limit: int | None = 0,
    register_now: bool = True,
) -> tuple[Cloth, str | None]:
    """Create a cloth with its sizes (one "ONE" variant when it has none) and announce it.

    Returns (cloth, problem): ``problem`` says why the synchronous registration with the
    inventory failed (None when it worked); the ``ClothCreated`` event delivers it anyway.
    """
    amount, clean_sizes = _clean(name=name, price=price, images=images, purchase_limit=purchase_limit, sizes=sizes)
    with transaction.atomic():
        cloth = Cloth.objects.create(
            name=name.strip(),
            brand=brand,
            category=category,
            description=description,
            price=amount,
            image_url=image_url,
            images=list(images or ([image_url] if image_url else [])),
            sale_starts_at=sale_starts_at,
            purchase_limit=purchase_limit or 0,
        )
        Variant.objects.bulk_create(
            [
                Variant(cloth=cloth, size=size, shown_stock=stock, sort_order=i)
                for i, (size, stock) in enumerate(clean_sizes)
            ]
        )
        cloth = Cloth.objects.prefetch_related("variants").get(pk=cloth.pk)
        record_event(_cloth_event(ClothCreated, cloth))
        transaction.on_commit(selectors.bump_cache_version)
    logger.info("cloth %s created (%s, %d variants)", cloth.id, cloth.name, len(clean_sizes))
    problem = register_with_inventory(cloth) if register_now else None
    return cloth, problem


def register_with_inventory(cloth: Cloth) -> str | None:
    """Register the cloth's variants, rule and stock with the inventory now. None if it worked."""
    p = to_payload(_cloth_event(ClothCreated, cloth))
    body = {
        "cloth_id": p["cloth_id"],
        "name": p["name"],
        "sale_starts_at": p["sale_starts_at"],
        "purchase_limit": p["purchase_limit"],
        "variants": [{"variant_id": v["variant_id"], "stock": v["stock"], "size": v["size"]} for v in p["variants"]],
    }
    try:
        # Idempotent: a variant the inventory knows keeps its counts.
        upstream.call_ok("inventory", "POST", "/internal/stock", body=body, idempotent=True)
    except ShopError as exc:
        logger.warning("cloth %s: inventory not reached (%s); ClothCreated will register it", cloth.id, exc.message)
        return exc.message
    return None


def update_cloth(*, cloth_id: int, new_sizes: list[tuple[str, int]] | None = None, **changes: Any) -> Cloth:
    """Change a cloth's fields (and add sizes). ``ClothUpdated`` when the inventory must know:
    price, sale start, purchase limit or new sizes."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(fields={f: ["not editable"] for f in sorted(unknown)})
    with transaction.atomic():
        cloth = Cloth.objects.select_for_update().filter(pk=cloth_id).first()
        if cloth is None:
            raise NotFound(f"No cloth {cloth_id}.")
        merged = {f: changes.get(f, getattr(cloth, f)) for f in ("name", "price", "images", "purchase_limit")}
        amount, clean_sizes = _clean(**merged, sizes=new_sizes)
        changes["price"] = amount
        rule_changed = any(f in changes and changes[f] != getattr(cloth, f) for f in _RULE_FIELDS)
        for field, value in changes.items():
            setattr(cloth, field, value)
        cloth.purchase_limit = cloth.purchase_limit or 0
        cloth.save()
        added = []
        if new_sizes:
            taken = set(cloth.variants.values_list("size", flat=True))
            clash = [s for s, _ in clean_sizes if s in taken]
            if clash:
                raise ValidationFailed(fields={"sizes": [f"size {clash[0]} exists already"]})
            start = cloth.variants.count()
            added = Variant.objects.bulk_create(
                [
                    Variant(cloth=cloth, size=s, shown_stock=n, sort_order=start + i)
                    for i, (s, n) in enumerate(clean_sizes)
                ]
            )
        if rule_changed or added:
            cloth = Cloth.objects.prefetch_related("variants").get(pk=cloth.pk)
            record_event(_cloth_event(ClothUpdated, cloth))
        transaction.on_commit(selectors.bump_cache_version)
    return cloth


def apply_stock_reports(reports: list[tuple[int, list[dict[str, Any]]]]) -> int:
    """Apply many stock reports at once: per variant only the newest counts, per cloth one update.

    The counts in a report replace the shown ones (versioned), so of a burst of reports
    only each variant's highest version matters; the others would be overwritten anyway.
    """
    newest: dict[int, dict[int, dict[str, Any]]] = {}
    for cloth_id, variants in reports:
        per_cloth = newest.setdefault(cloth_id, {})
        for v in variants:
            variant_id, version = int(v["variant_id"]), int(v.get("version", 0))
            if variant_id not in per_cloth or int(per_cloth[variant_id].get("version", 0)) < version:
                per_cloth[variant_id] = v
    return sum(apply_stock_changed(cloth_id=c, variants=list(vs.values())) for c, vs in newest.items())


#: One size of the cloth that shows stock, if any (whether the cloth is in stock).
_a_size_in_stock = prepare(
    lambda cloth_id: Variant.objects.filter(cloth_id=cloth_id, shown_stock__gt=0).values("id")[:1]
)


@functools.cache
def _stock_update_sql() -> str:
    """A size's shown count and its version, unless the version stored is as new (a late report)."""
    meta = Variant._meta
    quote = connection.ops.quote_name

    def col(name: str) -> str:
        return quote(meta.get_field(name).column)

    return (
        f"UPDATE {quote(meta.db_table)} SET {col('shown_stock')} = %s, {col('stock_version')} = %s "
        f"WHERE {col('id')} = %s AND {col('cloth')} = %s AND {col('stock_version')} < %s"
    )


def apply_stock_changed(*, cloth_id: int, variants: list[dict[str, Any]]) -> int:
    """Show the inventory's new counts; an older (late) report never overwrites a newer one."""
    updated = 0
    shows_some = False  # a variant updated here shows stock now
    # No savepoint inside the consumer's transaction (two more round trips per report):
    # nothing catches a failed report, the consumer's whole transaction rolls back.
    with transaction.atomic(savepoint=False):
        in_stock = bool(_a_size_in_stock(cloth_id=int(cloth_id)))
        with connection.cursor() as cursor:
            for v in variants:
                version = int(v.get("version", 0))
                cursor.execute(
                    _stock_update_sql(), [int(v["available"]), version, int(v["variant_id"]), int(cloth_id), version]
                )
                changed = cursor.rowcount
                updated += changed
                shows_some = shows_some or (changed > 0 and int(v["available"]) > 0)
        if updated:
            # In a drop the counts change with every order: only this cloth's detail shows
            # them. Lists show just in_stock, so they are invalidated only when that flips.
            transaction.on_commit(lambda: selectors.bump_cloth_version(cloth_id))
            # Read again only when a size ran out of a cloth in stock: whether another size
            # still has some, only the table knows. Otherwise the answer is known already.
            if shows_some:
                now_in_stock = True
            else:
                now_in_stock = in_stock and bool(_a_size_in_stock(cloth_id=int(cloth_id)))
            if now_in_stock != in_stock:
                transaction.on_commit(selectors.bump_cache_version)
    return updated

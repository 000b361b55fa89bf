"""Reads of the catalog: pages of clothes, one cloth, details for other services, and the cache versions."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from catalog.models import Cloth, Variant
from shared.redis import values_digest

logger = logging.getLogger(__name__)

_VERSION_KEY = "cloth:version"
_EPOCH_KEY = "cloth:cache-epoch"


@dataclass(frozen=True, slots=True)
class CacheVersion:
    #: what a cached page is keyed by: the catalog's version, and a cloth's own for its page
    version: str
    #: this Redis's lifetime, a random token set once; None right after Redis lost its data.
    #: Versions count again from 0 after such a loss, so a copy kept outside Redis is only
    #: trusted under the epoch it was made in.
    epoch: str | None
    #: the Redis keys read (the epoch's first) and the digest of the raw values they held
    #: (shared.redis.values_digest): an answer made under them stays right while they hold
    #: the same values; the gateway repeats it on that condition (gateway/answers.py)
    keys: tuple[str, ...] = ()
    digest: str | None = None


def cache_version(cloth_id: int | None = None) -> CacheVersion | None:
    """The versions a cached page is keyed by, in one round trip; None when Redis cannot be
    read (the cache is then skipped).

    Read as raw values through django-redis's own client, which raises in an outage where
    the cache (set to ignore outages) would answer nothing, indistinguishable from version 0.
    """
    names = [_EPOCH_KEY, _VERSION_KEY] + ([] if cloth_id is None else [_cloth_version_key(cloth_id)])
    try:
        keys = tuple(str(cache.client.make_key(name)) for name in names)
        found = cache.client.get_client(write=False).mget(keys)
        epoch = found[0]
        if epoch is None:  # a new Redis: the next read has its epoch
            cache.client.set(_EPOCH_KEY, uuid.uuid4().hex, timeout=None, nx=True)
    except Exception as exc:  # noqa: BLE001 - no cache: every read goes to PostgreSQL
        logger.warning("catalog cache unreadable (%s)", exc)
        return None
    version = ".".join(str(int(raw or 0)) for raw in found[1:])  # versions are stored as plain integers
    if epoch is None:
        return CacheVersion(version=version, epoch=None)
    return CacheVersion(version=version, epoch=str(cache.client.decode(epoch)), keys=keys, digest=values_digest(found))


def bump_cache_version() -> None:
    """Invalidate every cached list and detail at once (any cloth or stock change).

    In a cache outage nothing is bumped (and django-redis logs it): entries then expire
    after CATALOG_CACHE_SECONDS.
    """
    cache.incr(_VERSION_KEY, ignore_key_check=True)  # INCR: a missing version counts from 0


def _cloth_version_key(cloth_id: int) -> str:
    return f"cloth:{cloth_id}:version"


def bump_cloth_version(cloth_id: int) -> None:
    """Invalidate one cloth's cached detail (as :func:`bump_cache_version` in an outage)."""
    cache.incr(_cloth_version_key(cloth_id), ignore_key_check=True)


def is_on_sale(cloth: Cloth, now=None) -> bool:
    return cloth.sale_starts_at is None or cloth.sale_starts_at <= (now or timezone.now())


def clothes(
    *,
    category: str | None = None,
    brand: str | None = None,
    on_sale: bool | None = None,
    in_stock: bool | None = None,
    sort: str = "newest",
) -> QuerySet[Cloth]:
    """Clothes matching the filters, each annotated with ``in_stock`` (one query, no N+1)."""
    qs = Cloth.objects.annotate(in_stock=Exists(Variant.objects.filter(cloth=OuterRef("pk"), shown_stock__gt=0)))
    if category:
        qs = qs.filter(category=category)
    if brand:
        qs = qs.filter(brand=brand)
    now = timezone.now()
    if on_sale is True:
        qs = qs.filter(Q(sale_starts_at__isnull=True) | Q(sale_starts_at__lte=now))
    elif on_sale is False:
        qs = qs.filter(sale_starts_at__gt=now)
    if in_stock is not None:
        qs = qs.filter(in_stock=in_stock)
    order = {"newest": ["-created_at", "-id"], "price": ["price", "id"], "-price": ["-price", "-id"]}[sort]
    return qs.order_by(*order)


def list_item(cloth: Cloth, now=None) -> dict[str, Any]:
    return {
        "cloth_id": cloth.id,
        "name": cloth.name,
        "brand": cloth.brand,
        "category": cloth.category,
        "price": f"{cloth.price:.2f}",
        "image_url": cloth.image_url,
        "sale_starts_at": cloth.sale_starts_at.isoformat().replace("+00:00", "Z") if cloth.sale_starts_at else None,
        "on_sale": is_on_sale(cloth, now),
        "in_stock": bool(getattr(cloth, "in_stock", False)),
    }


def cloth_detail(cloth_id: int) -> dict[str, Any] | None:
    cloth = (
        Cloth.objects.filter(pk=cloth_id)
        .annotate(in_stock=Exists(Variant.objects.filter(cloth=OuterRef("pk"), shown_stock__gt=0)))
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("sort_order", "id")))
        .first()
    )
    if cloth is None:
        return None
    return {
        **list_item(cloth),
        "description": cloth.description,
        "images": list(cloth.images or []),
        "purchase_limit": cloth.purchase_limit or 0,
        "variants": [
            {"variant_id": v.id, "size": v.size, "stock": max(0, v.shown_stock)} for v in cloth.variants.all()
        ],
    }


def details(*, variant_ids: list[int], cloth_ids: list[int]) -> dict[str, list[dict[str, Any]]]:
    """The internal batch read the order service uses for names and prices. Unknown ids are left out."""
    variants = (
        list(Variant.objects.filter(id__in=variant_ids).select_related("cloth").order_by("id")) if variant_ids else []
    )
    wanted_clothes = set(cloth_ids)
    found = {c.id: c for c in Cloth.objects.filter(id__in=wanted_clothes)} if wanted_clothes else {}

    def cloth_dict(c: Cloth) -> dict[str, Any]:
        return {
            "cloth_id": c.id,
            "name": c.name,
            "brand": c.brand,
            "category": c.category,
            "price": f"{c.price:.2f}",
            "image_url": c.image_url,
            "sale_starts_at": c.sale_starts_at.isoformat() if c.sale_starts_at else None,
            "purchase_limit": c.purchase_limit or 0,
        }

    return {
        "clothes": [cloth_dict(found[c]) for c in sorted(found)],
        "variants": [
            {
                "variant_id": v.id,
                "cloth_id": v.cloth_id,
                "name": v.cloth.name,
                "size": v.size,
                "price": f"{v.cloth.price:.2f}",
                "sale_starts_at": v.cloth.sale_starts_at.isoformat() if v.cloth.sale_starts_at else None,
                "purchase_limit": v.cloth.purchase_limit or 0,
            }
            for v in variants
        ],
    }

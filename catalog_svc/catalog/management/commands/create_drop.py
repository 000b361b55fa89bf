"""Create a drop from the shell: the cloth, its sizes and stock, sale start and limit; prints JSON ids."""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from catalog import services
from shared.errors import ShopError


def _sizes(value: str) -> list[tuple[str, int]]:
    sizes = []
    for part in value.split(","):
        size, sep, stock = part.strip().partition(":")
        if not sep or not size.strip() or not stock.strip().isdigit():
            raise CommandError(f"--sizes: expected SIZE:STOCK[,SIZE:STOCK...], got {part.strip()!r}")
        sizes.append((size.strip(), int(stock)))
    return sizes


def _when(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(f"--starts-at: not an ISO 8601 time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = (
        "create_drop --name NAME --price 59000 --sizes S:100,M:200 --starts-at ISO8601 --limit 1 "
        "[--stock N (one size)] [--brand --category --description --image-url]"
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--price", required=True)
        parser.add_argument("--sizes", help="SIZE:STOCK,... (omit for a one-size cloth with --stock)")
        parser.add_argument("--stock", type=int, help="stock of a one-size cloth")
        parser.add_argument("--starts-at", dest="starts_at", help="sale start, ISO 8601 (default: now)")
        parser.add_argument("--limit", type=int, default=0, help="units per member (0 = no limit)")
        parser.add_argument("--brand", default="")
        parser.add_argument("--category", default="")
        parser.add_argument("--description", default="")
        parser.add_argument("--image-url", dest="image_url", default="")

    def handle(
        self, *args, name, price, sizes, stock, starts_at, limit, brand, category, description, image_url, **options
    ):
        if sizes and stock is not None:
            raise CommandError("give --sizes or --stock, not both")
        if stock is not None and stock < 0:
            raise CommandError("--stock must be 0 or more")
        size_list = _sizes(sizes) if sizes else [(services.ONE_SIZE, stock or 0)]
        if limit < 0:
            raise CommandError("--limit must be 0 (no limit) or more")
        try:
            cloth, problem = services.create_cloth(
                name=name,
                price=price,
                sizes=size_list,
                brand=brand,
                category=category,
                description=description,
                image_url=image_url,
                sale_starts_at=_when(starts_at) if starts_at else None,
                purchase_limit=limit,
            )
        except ShopError as exc:
            raise CommandError(f"{exc.message} {json.dumps(exc.fields) if exc.fields else ''}".strip()) from exc
        if problem:
            self.stderr.write(f"inventory not reached ({problem}); the ClothCreated event will register the stock")
        self.stdout.write(
            json.dumps(
                {
                    "cloth_id": cloth.id,
                    "sale_starts_at": cloth.sale_starts_at.isoformat() if cloth.sale_starts_at else None,
                    "variants": [
                        {"variant_id": v.id, "size": v.size, "stock": v.shown_stock} for v in cloth.variants.all()
                    ],
                }
            )
        )

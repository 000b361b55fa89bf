"""Stand-ins for the catalog's and inventory's HTTP answers (other services), at the upstream boundary."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from shared import errors


@dataclass
class FakeUpstreams:
    """Answers ``shared.upstream.call_ok`` like the catalog and inventory contracts say."""

    variants: dict[int, dict[str, Any]] = field(default_factory=dict)
    stock: dict[int, int] = field(default_factory=dict)
    reservations: dict[int, dict[str, Any]] = field(default_factory=dict)
    released: list[int] = field(default_factory=list)
    catalog_calls: int = 0
    reserve_calls: int = 0
    fail_reserve_with: Exception | None = None
    reserve_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_variant(
        self,
        variant_id: int,
        *,
        price: str = "59000.00",
        stock: int = 10,
        cloth_id: int = 7,
        size: str = "M",
        name: str = "Drop Tee",
    ) -> None:
        self.variants[variant_id] = {
            "variant_id": variant_id,
            "cloth_id": cloth_id,
            "name": name,
            "size": size,
            "price": price,
            "sale_starts_at": "2026-01-01T00:00:00+00:00",
            "purchase_limit": 5,
        }
        self.stock[variant_id] = stock

    def call_ok(self, service: str, method: str, path: str, *, body: Any = None, **_kw: Any) -> Any:
        if (service, method, path) == ("catalog", "POST", "/cloth/details"):
            self.catalog_calls += 1
            return {"clothes": [], "variants": [self.variants[v] for v in body["variant_ids"] if v in self.variants]}
        if service == "inventory" and path == "/internal/reservations":
            return self._reserve(body)
        if service == "inventory" and path.endswith("/release"):
            order_id = int(path.split("/")[3])
            with self.lock:
                res = self.reservations.pop(order_id, None)
                if res is not None:
                    for line in res["lines"]:
                        self.stock[line["variant_id"]] += line["quantity"]
                self.released.append(order_id)
            return {"order_id": order_id, "status": "RELEASED"}
        raise AssertionError(f"unexpected upstream call {service} {method} {path}")

    def _reserve(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.reserve_delay:
            time.sleep(self.reserve_delay)
        with self.lock:
            self.reserve_calls += 1
            if self.fail_reserve_with is not None:
                raise self.fail_reserve_with
            order_id = body["order_id"]
            if order_id in self.reservations:
                return {"order_id": order_id, "status": "RESERVED", "lines": body["lines"]}
            for line in body["lines"]:
                if self.stock.get(line["variant_id"], 0) < line["quantity"]:
                    raise errors.SoldOut(variant_id=line["variant_id"])
            for line in body["lines"]:
                self.stock[line["variant_id"]] -= line["quantity"]
            self.reservations[order_id] = body
            return {"order_id": order_id, "status": "RESERVED", "lines": body["lines"]}

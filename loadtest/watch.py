"""Watch a drop live in the terminal, from every service's /metrics, refreshed every second.

    python manage_all.py watch [CLOTH_ID] [--interval 1] [--once]

Units left per size (the gate, and PostgreSQL's sold and available), placements, wins,
sold-out and refused answers per second, payments per second, outbox backlog, consumer
lag, dead letters and the gate's drift from PostgreSQL. Without a cloth id, every drop
the inventory's /metrics shows (sales starting within INVENTORY_METRICS_DROP_HOURS of now).
A load test and a person can both watch a drop this way, without Prometheus or Grafana.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from shared.topology import DEFAULT_GATEWAY_PORT, GATEWAY_METRICS_OFFSET, PORT_OFFSETS, SERVICES

CLEAR = "\x1b[H\x1b[2J"

Samples = dict[tuple[str, frozenset], float]


@dataclass
class Snapshot:
    at: float
    by_service: dict[str, Samples] = field(default_factory=dict)  # a service down is absent

    def samples(self, service: str, name: str) -> list[tuple[dict[str, str], float]]:
        found = self.by_service.get(service, {})
        return [(dict(labels), value) for (n, labels), value in found.items() if n == name]

    def total(self, service: str, name: str, **match: str) -> float:
        return sum(v for labels, v in self.samples(service, name) if all(labels.get(k) == x for k, x in match.items()))


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(base_urls: dict[str, str], timeout: float = 2.0) -> Snapshot:
    snap = Snapshot(time.monotonic())
    for service, url in base_urls.items():
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout) as answer:
                snap.by_service[service] = parse(answer.read().decode())
        except (OSError, ValueError, urllib.error.URLError):
            continue
    return snap


def _rate(prev: Snapshot | None, cur: Snapshot, service: str, name: str, **match: str) -> float | None:
    if prev is None or service not in prev.by_service or service not in cur.by_service:
        return None
    seconds = cur.at - prev.at
    if seconds <= 0:
        return None
    # A counter that went down means the service restarted: count from zero.
    now, before = cur.total(service, name, **match), prev.total(service, name, **match)
    return (now - before if now >= before else now) / seconds


def figures(prev: Snapshot | None, cur: Snapshot, cloth: str | None = None) -> dict:
    """Everything the screen shows, from two scrapes (pure: the tests feed it text)."""
    stock: dict[tuple[str, str, str, str], dict[str, float]] = defaultdict(dict)
    for metric, key in (
        ("shop_gate_available_units", "gate"),
        ("shop_stock_available_units", "available"),
        ("shop_stock_sold_units", "sold"),
        ("shop_stock_total_units", "total"),
    ):
        for labels, value in cur.samples("inventory", metric):
            if cloth is None or labels.get("cloth_id") == cloth:
                ident = (labels.get("cloth_id", ""), labels.get("cloth", ""), labels.get("variant_id", ""))
                stock[(*ident, labels.get("size", ""))][key] = value
    refusals = ("limit_exceeded", "not_on_sale", "refused")
    # The gateway repeats the order service's remembered sold-out answer itself (gateway/answers.py).
    repeated = {"name": "shop_repeated_answers_total", "upstream": "order", "code": "sold_out"}
    repeated_rate = _rate(prev, cur, "gateway", **repeated) or 0.0
    ordered, sold_out = (
        _rate(prev, cur, "order", "shop_orders_total"),
        _rate(prev, cur, "order", "shop_orders_total", outcome="sold_out"),
    )
    rates = {
        "placements": None if ordered is None else ordered + repeated_rate,
        "won": _rate(prev, cur, "order", "shop_orders_total", outcome="won"),
        "sold_out": None if sold_out is None else sold_out + repeated_rate,
        "refused": None,
        "failed": _rate(prev, cur, "order", "shop_orders_total", outcome="failed"),
        "paid": _rate(prev, cur, "payment", "shop_payments_total", outcome="completed"),
        "declined": _rate(prev, cur, "payment", "shop_payments_total", outcome="declined"),
    }
    parts = [_rate(prev, cur, "order", "shop_orders_total", outcome=o) for o in refusals]
    if all(p is not None for p in parts):
        rates["refused"] = sum(parts)
    totals = {
        "won": cur.total("order", "shop_orders_total", outcome="won"),
        "sold_out": cur.total("order", "shop_orders_total", outcome="sold_out") + cur.total("gateway", **repeated),
        "refused": sum(cur.total("order", "shop_orders_total", outcome=o) for o in refusals),
    }
    outbox = {
        s: (cur.total(s, "shop_outbox_waiting_rows"), cur.total(s, "shop_outbox_oldest_waiting_seconds"))
        for s in SERVICES
        if s in cur.by_service
    }
    lag = {
        (labels.get("group", s), labels.get("topic", "")): value
        for s in SERVICES
        for labels, value in cur.samples(s, "shop_consumer_lag_messages")
    }
    dead = {s: cur.total(s, "shop_dead_letters_stored", state="open") for s in SERVICES if s in cur.by_service}
    drift = {
        labels.get("cloth_id", ""): value
        for labels, value in cur.samples("inventory", "shop_gate_drift_units")
        if cloth is None or labels.get("cloth_id") == cloth
    }
    checked = cur.total("inventory", "shop_gate_drift_checked_timestamp_seconds")
    return {
        "stock": dict(sorted(stock.items(), key=lambda kv: (int(kv[0][0] or 0), int(kv[0][2] or 0)))),
        "rates": rates,
        "totals": totals,
        "outbox": outbox,
        "lag": lag,
        "dead_letters": dead,
        "drift": drift,
        "drift_checked_ago": (time.time() - checked) if checked else None,
        "down": [s for s in SERVICES if s not in cur.by_service],
    }


def _num(value: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def render(figs: dict, *, title: str = "") -> str:
    out = [f"Drop Shop - {title or 'live'}   {time.strftime('%H:%M:%S')}   (Ctrl-C to stop)", ""]
    out.append(f"{'cloth':<28}{'size':<7}{'left (gate)':>12}{'available':>11}{'sold':>8}{'total':>8}")
    if not figs["stock"]:
        out.append("  (no drop in the inventory's /metrics: none starts within INVENTORY_METRICS_DROP_HOURS of now)")
    for (cloth_id, name, _variant, size), values in figs["stock"].items():
        label = f"{name or 'cloth'} #{cloth_id}"[:27]
        out.append(
            f"{label:<28}{size:<7}{_num(values.get('gate')):>12}{_num(values.get('available')):>11}"
            f"{_num(values.get('sold')):>8}{_num(values.get('total')):>8}"
        )
    r, t = figs["rates"], figs["totals"]
    out += [
        "",
        f"placements/s {_num(r['placements'], '{:.1f}'):>8}   won/s {_num(r['won'], '{:.1f}'):>7}   "
        f"sold-out/s {_num(r['sold_out'], '{:.1f}'):>7}   refused/s {_num(r['refused'], '{:.1f}'):>7}   "
        f"failed/s {_num(r['failed'], '{:.1f}'):>6}",
        f"  so far: won {t['won']:.0f}, sold out {t['sold_out']:.0f}, refused {t['refused']:.0f}"
        f"      payments/s: completed {_num(r['paid'], '{:.1f}')}, declined {_num(r['declined'], '{:.1f}')}",
        "",
        "outbox backlog   "
        + "   ".join(
            f"{s} {rows:.0f}" + (f" ({age:.0f}s)" if rows else "") for s, (rows, age) in figs["outbox"].items()
        ),
        "consumer lag     "
        + ("   ".join(f"{g}<-{topic} {v:.0f}" for (g, topic), v in sorted(figs["lag"].items())) or "-"),
        "dead letters     " + "   ".join(f"{s} {n:.0f}" for s, n in figs["dead_letters"].items()),
        "gate drift       "
        + ("   ".join(f"cloth {c}: {v:.0f}" for c, v in sorted(figs["drift"].items()) if v) or "none")
        + (f"   (checked {figs['drift_checked_ago']:.0f}s ago)" if figs["drift_checked_ago"] is not None else ""),
    ]
    if figs["down"]:
        out += ["", "no /metrics from: " + ", ".join(figs["down"])]
    return "\n".join(out)


def base_urls(stack: str) -> dict[str, str]:
    base = 18000 if stack == "e2e" else int(os.environ.get("GATEWAY_PORT", DEFAULT_GATEWAY_PORT))
    urls = {
        s: os.environ.get(f"{s.upper()}_METRICS_URL", f"http://127.0.0.1:{base + PORT_OFFSETS[s]}") for s in SERVICES
    }
    urls["gateway"] = os.environ.get("GATEWAY_METRICS_URL", f"http://127.0.0.1:{base + GATEWAY_METRICS_OFFSET}")
    return urls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="manage_all.py watch", description=__doc__.split("\n")[0])
    p.add_argument("cloth_id", nargs="?", help="one cloth (default: every drop the inventory shows)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    p.add_argument("--once", action="store_true", help="print one screen (rates over one interval) and stop")
    p.add_argument("--stack", default="dev", help="which manage_all.py stack (dev)")
    args = p.parse_args(argv)
    urls = base_urls(args.stack)
    title = f"cloth {args.cloth_id}" if args.cloth_id else "every drop"
    prev = None
    try:
        while True:
            cur = scrape(urls)
            if args.once and prev is None:
                prev = cur
                time.sleep(args.interval)
                continue
            screen = render(figures(prev, cur, args.cloth_id), title=title)
            if args.once:
                print(screen)
                return 0 if all(s in cur.by_service for s in SERVICES) else 1
            sys.stdout.write(CLEAR + screen + "\n")
            sys.stdout.flush()
            prev = cur
            time.sleep(max(0.0, args.interval - (time.monotonic() - cur.at)))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

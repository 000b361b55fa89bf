"""compose/'s Prometheus and Grafana files: valid, scraping every service, charting metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
SERVICES = ("gateway", "member", "catalog", "order", "inventory", "payment")


def _metric_names_in_code() -> set[str]:
    root = COMPOSE.parent
    text = "".join(
        p.read_text()
        for p in [root / "shared" / "metrics.py", *root.glob("*/*/metrics.py"), *root.glob("shared/*/metrics.py")]
    )
    names = set(re.findall(r'"(shop_[a-z_]+)"', text))
    # Counters gain _total; histograms _bucket, _count, _sum.
    return names | {f"{n}_{s}" for n in names for s in ("total", "bucket", "count", "sum")}


def test_prometheus_scrapes_every_service_and_the_gateway_on_its_private_port():
    config = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {"gateway:9100", *(f"{s}:8000" for s in SERVICES[1:])}


def test_every_process_of_a_service_shares_its_metrics_volume():
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, spec in services.items():
        base = name.split("-")[0]
        if base in SERVICES and not name.endswith("-migrate"):
            assert spec.get("volumes") == [f"{base}-metrics:/metrics"], name
    assert {"prometheus", "grafana"} <= set(services)
    gateway = services["gateway"]
    assert "0.0.0.0:9100" in gateway["command"] and gateway["ports"] == ["${GATEWAY_PORT:-8000}:8000"]


def test_the_drop_dashboard_charts_only_metrics_the_services_export():
    dashboard = json.loads((COMPOSE / "grafana" / "dashboards" / "drop.json").read_text())
    assert dashboard["title"] == "Drop"
    known = _metric_names_in_code()
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(shop_[a-z_]+)\b", target["expr"])
    }
    assert used and used <= known, used - known

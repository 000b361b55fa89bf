"""The two stacks this checkout runs: the developer's ("dev") and the end-to-end tests' ("e2e").

A stack is a set of ports, databases, a Redis database, a broker and a run folder
(``.run/<name>``: supervisor's configuration and socket, logs, mail, secrets).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from shared.topology import (
    DEFAULT_GATEWAY_PORT,
    GATEWAY_METRICS_OFFSET,
    PASSED_PREFIXES,
    PORT_OFFSETS,
    WEB,
    database_name,
    service_url_variable,
)

from .console import die
from .venv import ROOT

RUN = ROOT / ".run"


@dataclass
class Stack:
    name: str
    port_base: int
    kafka_port: int
    redis_db: int
    db_prefix: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return RUN / self.name

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def mail_dir(self) -> Path:
        return self.dir / "mail"

    @property
    def sock(self) -> Path:
        return self.dir / "supervisor.sock"

    @property
    def metrics_dir(self) -> Path:
        return self.dir / "metrics"

    @property
    def gateway_metrics_port(self) -> int:
        return self.port_base + GATEWAY_METRICS_OFFSET

    def port(self, service: str) -> int:
        return self.port_base + PORT_OFFSETS[service]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    def service_urls(self) -> dict[str, str]:
        """Where every web process of this stack listens, as the processes read it."""
        return {service_url_variable(s): self.url(s) for s in WEB}

    @property
    def own_kafka(self) -> bool:
        return not os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or self.name != "dev"

    @property
    def kafka(self) -> str:
        if self.own_kafka:
            return f"127.0.0.1:{self.kafka_port}"
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def redis_url(self) -> str:
        base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        if self.name == "dev":
            return base
        return base.rsplit("/", 1)[0] + f"/{self.redis_db}"

    def database_url(self, service: str) -> str:
        if self.name == "dev" and os.environ.get(f"{service.upper()}_DATABASE_URL"):
            return os.environ[f"{service.upper()}_DATABASE_URL"]
        server = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
        return f"{server}/{database_name(service, self.db_prefix)}"

    def secrets(self) -> dict[str, str]:
        path = self.dir / "secrets.env"
        if not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "".join(
                    f"{k}={secrets.token_urlsafe(48)}\n"
                    for k in ("DJANGO_SECRET_KEY", "INTERNAL_API_SECRET", "JWT_SIGNING_KEY")
                )
            )
            path.chmod(0o600)
        values = dict(line.split("=", 1) for line in path.read_text().split())
        for key in values:  # an operator's own secrets win
            if os.environ.get(key) and self.name == "dev":
                values[key] = os.environ[key]
        return values

    def env(self, service: str | None = None) -> dict[str, str]:
        env = {
            "PYTHONUNBUFFERED": "1",
            "REDIS_URL": self.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "EMAIL_FILE_PATH": str(self.mail_dir),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            **self.service_urls(),
            **self.secrets(),
        }
        if self.name == "dev":
            # The operator's own settings go to every process, written into the supervisor
            # config so that `up` or `restart` after a change applies it.
            env.update({k: v for k, v in os.environ.items() if k.startswith(PASSED_PREFIXES) and v})
        env.update(self.extra_env)
        if service and service != "gateway":
            env["DATABASE_URL"] = self.database_url(service)
        if service:
            # prometheus-client's multiprocess files: every process of a service adds to its /metrics.
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir / service)
            env["GATEWAY_METRICS_PORT"] = str(self.gateway_metrics_port)
        return env


def make_stack(name: str) -> Stack:
    if name == "dev":
        return Stack(
            "dev",
            int(os.environ.get("GATEWAY_PORT", DEFAULT_GATEWAY_PORT)),
            int(os.environ.get("KAFKA_PORT", "9092")),
            0,
            "shop_",
        )
    if name == "e2e":
        # Short deadlines so the end-to-end tests see expiry in seconds, not minutes.
        return Stack(
            "e2e",
            18000,
            19092,
            1,
            "shop_e2e_",
            {
                "ORDER_PAYMENT_DEADLINE_SECONDS": "20",
                "INVENTORY_RESERVATION_GRACE_SECONDS": "4",
                "INVENTORY_GATE_REPAIR_SWEEP_SECONDS": "5",
                "EMAIL_SEND_COOLDOWN_SECONDS": "0",
                # 1 for the tests; a benchmark on this stack joins thousands of members from
                # one address: E2E_RATE_LIMIT_SCALE=1000 (docs/performance.md).
                "RATE_LIMIT_SCALE": os.environ.get("E2E_RATE_LIMIT_SCALE", "1"),
                # Short, so the reuse test need not wait the default 5 s; but longer than one
                # slow Redis reconnect of the gateway (2 s: its socket timeout), which once made
                # one of ten parallel refreshes arrive after a 1 s grace.
                "REFRESH_REUSE_GRACE_SECONDS": "3",
                # A bound a burst of a few dozen catalog reads is always beyond (tests/e2e/test_overload.py).
                "GATEWAY_ADMISSION_IN_FLIGHT": "catalog=1",
                "GATEWAY_ADMISSION_QUEUE": "catalog=1",
            },
        )
    die(f"unknown stack {name}")
    raise AssertionError

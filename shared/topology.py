"""The shop's processes and where they listen: the one list every tool and service reads.

The services' settings (their peers' addresses), the gateway (whom it fronts),
``manage_all.py`` (what to start, on which port, with how many workers, with which of
the operator's variables) and the load tests (what to measure) all read it, so a service
is added or moved here once. Only the standard library: ``manage_all.py`` reads it before
the virtualenv exists.
"""

from __future__ import annotations

#: The public door: verifies tokens, forwards the public API.
GATEWAY = "gateway"
#: The domain services, each a Django project ``<name>_svc`` with its own database.
SERVICES = ("member", "catalog", "order", "inventory", "payment")
#: Every web process, the gateway first; a stack's ports follow this order.
WEB = (GATEWAY, *SERVICES)
#: Services whose Kafka consumer runs (the ones with event handlers).
CONSUMERS = ("catalog", "order", "inventory", "payment")

#: The gateway's port on a developer machine (``GATEWAY_PORT``); each service takes the next.
DEFAULT_GATEWAY_PORT = 8000
PORT_OFFSETS = {name: offset for offset, name in enumerate(WEB)}
#: The gateway's /metrics listens apart from its public port, at the gateway's port plus
#: this (8009 on a developer machine): Prometheus reaches it, clients never do.
GATEWAY_METRICS_OFFSET = 9
#: Web process -> its port on a developer machine.
SERVICE_PORTS = {name: DEFAULT_GATEWAY_PORT + offset for name, offset in PORT_OFFSETS.items()}

#: Web workers x threads per process (2 cores; see docs/performance.md for why), each
#: overridden by ``<NAME>_WORKERS`` / ``<NAME>_THREADS``. Under granian every extra thread
#: of a worker costs CPU per request in GIL hand-offs, so the services run few threads: a
#: cached read needs none to wait on, and the order path's waits (inventory, PostgreSQL)
#: are milliseconds. The gateway's threads mostly wait on a service, but they also take
#: the GIL from its main thread, which accepts and refuses: in 2,000-buyer drops 8 threads
#: per worker answered p50 65-82 ms and p99 0.8-1.0 s where 16 answered 230 ms and 1.2-1.3 s
#: (docs/performance.md). A request that waits too long for a thread is refused by the main
#: thread (README, "Overload").
WEB_SIZING = {
    "gateway": (3, 8),
    "member": (1, 2),
    "catalog": (2, 1),
    "order": (2, 2),
    "inventory": (2, 2),
    "payment": (1, 2),
}
#: The WSGI server of each web process (``WEB_SERVER``, ``<NAME>_WEB_SERVER``): granian for
#: the services, gunicorn for the gateway (why: docs/performance.md, docs/architecture.md).
WEB_SERVERS = ("gunicorn", "granian")
DEFAULT_WEB_SERVER = {name: "gunicorn" if name == GATEWAY else "granian" for name in WEB}

#: The operator's environment variables (by prefix) that reach every process of the
#: developer stack on ``up`` and ``restart``: each setting the README documents is one.
PASSED_PREFIXES = (
    "EMAIL_",
    "DEFAULT_FROM_EMAIL",
    "ORDER_",
    "WISHLIST_",
    "INVENTORY_",
    "STOCK_",
    "CATALOG_",
    "PAYMENT_",
    "RATE_",
    "PASSWORD_",
    "JWT_",
    "GATEWAY_",
    "GUNICORN_",
    "UPSTREAM_",
    "OUTBOX_",
    "CONSUMER_",
    "DB_POOL",
    "DB_SERVER_SIDE_BINDING",
    "DB_VACUUM_",
    "INBOX_RETENTION_SECONDS",
    "EVENT_PURGE_",
    "CELERY_LOG_EACH_TASK",
    "KAFKA_TOPIC_",
    "LOG_LEVEL",
    "LOG_FLUSH_MS",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "ARGON2_",
    "REFRESH_",
    "REQUEST_",
    "SAGA_",
    "STAFF_",
)


def service_url_variable(name: str) -> str:
    """The variable that tells every process where web process ``name`` listens."""
    return f"{name.upper()}_SERVICE_URL"


def database_name(service: str, prefix: str = "shop_") -> str:
    """A service's PostgreSQL database: ``shop_<service>`` on a developer machine."""
    return f"{prefix}{service}"

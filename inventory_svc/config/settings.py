"""Settings of the inventory service: the shared ones, plus what is its own."""

from pathlib import Path

from shared.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

# The Django cache holds stock reads for other services only (the stock gate is Redis
# reached directly, whose failures are never ignored): an outage costs a PostgreSQL read.
globals().update(service_settings("inventory", base_dir=BASE_DIR, apps=["inventory"], cache_outage_is_a_miss=True))

# Stock reads for other services (POST /cloth/inventory): a short-lived Redis cache, or
# PostgreSQL every time (so a load test can measure what the cache buys).
STOCK_READS_FROM_CACHE = env.bool("STOCK_READS_FROM_CACHE", default=True)
INVENTORY_STOCK_CACHE_SECONDS = env.float("INVENTORY_STOCK_CACHE_SECONDS", default=1.0)
# An ACTIVE reservation is released this long after its deadline if the order side never ended it.
INVENTORY_RESERVATION_GRACE_SECONDS = env.int("INVENTORY_RESERVATION_GRACE_SECONDS", default=120)
# Deadline of a reservation whose caller gave none.
INVENTORY_DEFAULT_RESERVATION_SECONDS = env.int("INVENTORY_DEFAULT_RESERVATION_SECONDS", default=600)
# How long a released/returned order's gate record stays (a late retry of its reserve still sees it).
INVENTORY_GATE_RECORD_TTL_SECONDS = env.int("INVENTORY_GATE_RECORD_TTL_SECONDS", default=7 * 24 * 3600)
# How long a request waits for another one loading a cloth's gate from PostgreSQL.
INVENTORY_GATE_LOAD_WAIT_SECONDS = env.float("INVENTORY_GATE_LOAD_WAIT_SECONDS", default=5.0)

# A gate record PostgreSQL contradicts is repaired once it is this old (younger ones may
# belong to a request still under way).
INVENTORY_GATE_REPAIR_AGE_SECONDS = env.float("INVENTORY_GATE_REPAIR_AGE_SECONDS", default=120.0)

# /metrics shows the stock of the clothes whose sale starts within this many hours of now
# (either way): the drops being run or about to be.
INVENTORY_METRICS_DROP_HOURS = env.float("INVENTORY_METRICS_DROP_HOURS", default=6.0)

CELERY_BEAT_SCHEDULE = {
    **CELERY_BEAT_SCHEDULE,  # noqa: F821 - set by service_settings above
    "export-gate-drift": {
        "task": "inventory.tasks.export_gate_drift",
        "schedule": env.float("INVENTORY_DRIFT_METRIC_SECONDS", default=30.0),
        "options": {"expires": 30},
    },
    "release-expired-reservations": {
        "task": "inventory.tasks.release_expired_reservations",
        "schedule": env.float("INVENTORY_EXPIRY_SWEEP_SECONDS", default=15.0),
        "options": {"expires": 30},
    },
    "repair-gate": {
        "task": "inventory.tasks.repair_gate",
        "schedule": env.float("INVENTORY_GATE_REPAIR_SWEEP_SECONDS", default=60.0),
        "options": {"expires": 60},
    },
}

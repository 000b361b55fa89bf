"""Settings of the order service: the shared ones, plus what is its own."""

from pathlib import Path

from shared.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings("order", base_dir=BASE_DIR, apps=["orders", "wishlist"])
globals().update(_shared)
SPECTACULAR_SETTINGS = {
    **_shared["SPECTACULAR_SETTINGS"],
    "ENUM_NAME_OVERRIDES": {"OrderStatusEnum": "orders.models.OrderStatus"},
}

# An order unpaid this long after it was placed expires and its stock goes back.
ORDER_PAYMENT_DEADLINE_SECONDS = env.int("ORDER_PAYMENT_DEADLINE_SECONDS", default=600)
# How long a payment that started charging holds its order against a cancel or expiry,
# unless PaymentCompleted / PaymentFailed ends the wait first (the charge plus the event).
ORDER_PAYMENT_HOLD_SECONDS = env.int("ORDER_PAYMENT_HOLD_SECONDS", default=60)
# How often the expiry sweep runs, and how many orders one batch ends.
ORDER_EXPIRY_SWEEP_SECONDS = env.float("ORDER_EXPIRY_SWEEP_SECONDS", default=5.0)
ORDER_EXPIRY_BATCH_SIZE = env.int("ORDER_EXPIRY_BATCH_SIZE", default=200)
# Catalog answers (names, sizes, prices) kept in the cache: a drop must not pay a catalog hop per order.
ORDER_CATALOG_CACHE_SECONDS = env.int("ORDER_CATALOG_CACHE_SECONDS", default=30)
# Input limits of an order (and of a wishlist line).
ORDER_MAX_LINES = env.int("ORDER_MAX_LINES", default=20)
ORDER_MAX_LINE_QUANTITY = env.int("ORDER_MAX_LINE_QUANTITY", default=10)
# How long an Idempotency-Key's claim is held in Redis (the order row keeps it for ever).
ORDER_IDEMPOTENCY_TTL_SECONDS = env.int("ORDER_IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
WISHLIST_MAX_ITEMS = env.int("WISHLIST_MAX_ITEMS", default=100)

# The saga's reconciliation (orders/reconcile.py): how often, how long events in flight get
# to land before a disagreement counts, and how far back it looks.
SAGA_RECONCILE_EVERY_SECONDS = env.float("SAGA_RECONCILE_EVERY_SECONDS", default=300.0)
SAGA_RECONCILE_GRACE_SECONDS = env.float("SAGA_RECONCILE_GRACE_SECONDS", default=60.0)
SAGA_RECONCILE_WINDOW_SECONDS = env.float("SAGA_RECONCILE_WINDOW_SECONDS", default=6 * 3600.0)

CELERY_BEAT_SCHEDULE = {
    **_shared["CELERY_BEAT_SCHEDULE"],
    "reconcile-saga": {
        "task": "orders.tasks.reconcile_saga",
        "schedule": SAGA_RECONCILE_EVERY_SECONDS,
        "options": {"expires": SAGA_RECONCILE_EVERY_SECONDS},
    },
    "expire-overdue-orders": {
        "task": "orders.tasks.expire_overdue_orders",
        "schedule": ORDER_EXPIRY_SWEEP_SECONDS,
        "options": {"expires": max(5.0, ORDER_EXPIRY_SWEEP_SECONDS * 2)},
    },
}
# How long this process remembers the stock gate's "sold out" for a variant (0 = never).
ORDER_SOLD_OUT_MEMORY_SECONDS = env.float("ORDER_SOLD_OUT_MEMORY_SECONDS", default=1.0)

"""Settings of the gateway: no database, no admin, no sessions; a routing allowlist.

The gateway verifies the access token at the edge and forwards the public API, and only
the public API, to the services. Anything not in ``GATEWAY_ROUTES`` is a 404.
"""

import math
from pathlib import Path

from shared.settings import env, service_settings
from shared.topology import SERVICES
from shared.topology import WEB_SIZING as DEFAULT_WEB_SIZING

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings("gateway", base_dir=BASE_DIR, apps=["gateway"], database=False)
globals().update(_shared)

# The hot path is one plain Django view: nothing else runs per request.
INSTALLED_APPS = ["gateway"]
MIDDLEWARE = [
    "shared.metrics.RequestMetricsMiddleware",
    "shared.requests.RequestIdMiddleware",
    "shared.errors.JsonErrorMiddleware",
]
TEMPLATES: list = []
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
APPEND_SLASH = False
for _unused in (
    "REST_FRAMEWORK",
    "SPECTACULAR_SETTINGS",
    "CELERY_BEAT_SCHEDULE",
    "STATIC_ROOT",
    "WHITENOISE_USE_FINDERS",
    "ADMIN_MIDDLEWARE",
    "SILENCED_SYSTEM_CHECKS",
):
    globals().pop(_unused, None)

#: The public API: (methods, path regex (whole path), upstream service, public?).
#: Public routes pass without a token; every other one needs a valid access token.
#: Internal routes (POST/PUT /cloth/inventory, POST /cloth/details, /internal/*) are absent: 404.
GATEWAY_ROUTES = [
    ("POST", r"/member/join", "member", True),
    ("POST", r"/member/login", "member", True),
    ("POST", r"/member/email/send", "member", True),
    ("POST", r"/member/email/verify", "member", True),
    ("GET", r"/member/refresh", "member", True),
    ("GET PUT", r"/member/mypage", "member", False),
    ("PATCH", r"/member/password", "member", False),
    ("DELETE", r"/member/logout", "member", False),
    ("DELETE", r"/member/logout/all", "member", False),
    ("GET", r"/cloth/list", "catalog", True),
    ("GET", r"/cloth/detail/\d+", "catalog", True),
    ("POST", r"/orders/add", "order", False),
    ("POST", r"/orders/add/Wishlist", "order", False),
    ("PUT", r"/orders/cancel", "order", False),
    ("PUT", r"/orders/refund", "order", False),
    ("GET", r"/orders/detail/\d+", "order", False),
    ("GET", r"/orders/list/\d+", "order", False),
    ("GET", r"/wishlist", "order", False),
    ("POST", r"/wishlist/add", "order", False),
    ("PUT", r"/wishlist/update", "order", False),
    ("DELETE", r"/wishlist/delete", "order", False),
    ("POST", r"/payment", "payment", False),
    ("PUT", r"/payment/\d+", "payment", False),
]

#: Client request headers passed on (everything else, identity headers above all, is dropped;
#: the Host always goes on, checked against ALLOWED_HOSTS, or the gateway's own name).
GATEWAY_FORWARD_HEADERS = [
    "Content-Type",
    "Accept",
    "Accept-Language",
    "User-Agent",
    "Refresh-Token",
    "Idempotency-Key",
    "If-None-Match",
]
#: Upstream response headers passed back.
GATEWAY_RETURN_HEADERS = [
    "Content-Type",
    "Retry-After",
    "Location",
    "Allow",
    "ETag",
    "Cache-Control",
    "WWW-Authenticate",
]
#: Keep-alive connections kept per upstream service (per gunicorn worker).
GATEWAY_POOL_MAXSIZE = env.int("GATEWAY_POOL_MAXSIZE", default=16)
GATEWAY_HEALTH_TIMEOUT_SECONDS = env.float("GATEWAY_HEALTH_TIMEOUT_SECONDS", default=2.0)
GATEWAY_SCHEMA_CACHE_SECONDS = env.int("GATEWAY_SCHEMA_CACHE_SECONDS", default=300)
# One log line per forwarded request (method, path, service, status, member, ms). Off by
# default: in a drop it cost the gateway a tenth of its CPU, and supervisord as much again
# copying it; every answer carries X-Request-Id, and errors are logged regardless.
GATEWAY_ACCESS_LOG = env.bool("GATEWAY_ACCESS_LOG", default=False)
#: The gateway's /metrics answers only on this port (a second address its web server listens
#: on, for Prometheus; never the public one). 0: nowhere.
GATEWAY_METRICS_PORT = env.int("GATEWAY_METRICS_PORT", default=0)
#: The services the gateway fronts (health and API docs); the routes name them too.
GATEWAY_SERVICES = list(SERVICES)


def _sizes(raw: str) -> dict[str, tuple[int, int]]:
    """ "gateway=3x16,order=2x2" -> {"gateway": (3, 16), "order": (2, 2)}."""
    out = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, size = part.partition("=")
        workers, _, threads = size.partition("x")
        out[name.strip()] = (int(workers), int(threads or 1))
    return out


def _per_service(raw: str, defaults: dict[str, int]) -> dict[str, int]:
    """ "4" sets every service, "order=3,catalog=2" some; the others keep their default."""
    raw = raw.strip()
    if raw and "=" not in raw:
        return dict.fromkeys(defaults, int(raw))
    out = dict(defaults)
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, value = part.partition("=")
        out[name.strip()] = int(value)
    return out


# Admission control (gateway/admission.py). Per gateway process and upstream service: at
# most IN_FLIGHT requests forwarded at once, at most QUEUE more waiting up to WAIT_SECONDS
# for a place, the rest answered at once 503 `overloaded` with Retry-After. The defaults
# follow the stack's sizing (shared.topology's, or STACK_WEB_SIZING as the developer stack
# writes it with its overrides: workers x threads of every web server): twice a service's
# threads, shared by the gateway's workers, so the service always has the next request at
# hand. The queue holds at least GATEWAY_ADMISSION_MIN_QUEUE: the wait is bounded by time
# anyway, and a frontend's small burst (tabs refreshing one session at once) must wait a
# moment, not be refused, since a refused refresh sent again after Retry-After may come
# after the refresh grace. A busy gate may hold every gateway thread of a process (with the
# default sizing a worker has fewer threads than the order gate's in flight plus queue): a
# request that then waits too long for a thread is refused by the web server's main thread
# (GATEWAY_THREAD_WAIT_SECONDS below).
WEB_SIZING = {**DEFAULT_WEB_SIZING, **_sizes(env.str("STACK_WEB_SIZING", default=""))}
_gateway_workers = max(1, WEB_SIZING["gateway"][0])
_in_flight = _per_service(
    env.str("GATEWAY_ADMISSION_IN_FLIGHT", default=""),
    {s: max(2, math.ceil(2 * w * t / _gateway_workers)) for s, (w, t) in WEB_SIZING.items() if s in GATEWAY_SERVICES},
)
GATEWAY_ADMISSION_MIN_QUEUE = env.int("GATEWAY_ADMISSION_MIN_QUEUE", default=8)
_queue = _per_service(
    env.str("GATEWAY_ADMISSION_QUEUE", default=""),
    {s: max(n, GATEWAY_ADMISSION_MIN_QUEUE) for s, n in _in_flight.items()},
)
GATEWAY_ADMISSION_WAIT_SECONDS = env.float("GATEWAY_ADMISSION_WAIT_SECONDS", default=0.25)
#: A request that waited longer than this for a gateway thread (in the web server's queue,
#: before any gate sees it: shared/gunicorn_worker.py stamps when it was ready) is answered
#: `overloaded` before any other work: an answer then waits at most this and a gate's wait in
#: the gateway before its service is called. 0.15 s rather than the gate's 0.25 s: shorter
#: tails in fairness drops by turns; 0.1 s was worse (docs/performance.md, "Sixteenth round").
#: 0: off.
GATEWAY_THREAD_WAIT_SECONDS = env.float("GATEWAY_THREAD_WAIT_SECONDS", default=0.15)
#: service -> (in flight, queue, wait seconds)
GATEWAY_ADMISSION = {
    s: (_in_flight[s], _queue.get(s, _in_flight[s]), GATEWAY_ADMISSION_WAIT_SECONDS) for s in GATEWAY_SERVICES
}
#: Retry-After of an `overloaded` answer: this many seconds plus 0..JITTER more, drawn per answer.
GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS = env.int("GATEWAY_OVERLOAD_RETRY_AFTER_SECONDS", default=2)
GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS = env.int("GATEWAY_OVERLOAD_RETRY_JITTER_SECONDS", default=4)
#: A member held to a Retry-After (refused `overloaded`, or over the per-member order limit)
#: who places an order again before it ends is answered `rate_limited` by the web server's
#: main thread, from this process's own record of the holds, after this many seconds, on its
#: kept-alive connection (shared/gunicorn_worker.py): a bot that clicks again as soon as it
#: has an answer clicks at most once per this delay per connection, and costs no thread,
#: token check or Redis round trip. 0: such clicks go to a thread, which refuses them from
#: Redis at once.
GATEWAY_HELD_ANSWER_DELAY_SECONDS = env.float("GATEWAY_HELD_ANSWER_DELAY_SECONDS", default=0.5)
#: /health says the gateway is shedding while a gate refused a request this recently.
GATEWAY_SHEDDING_WINDOW_SECONDS = env.float("GATEWAY_SHEDDING_WINDOW_SECONDS", default=10.0)

# Rate limits (gateway/limits.py): (count, window seconds), counted in Redis.
# RATE_LIMIT_SCALE multiplies the per-address count (as the member service's limits: a
# load test of many members from one address raises it; 0 turns it off); the per-member
# drop limit is its own setting (0 turns it off).
RATE_LIMIT_SCALE = env.float("RATE_LIMIT_SCALE", default=1.0)
GATEWAY_RATE_LIMITS = {
    "order_member": (
        env.int("RATE_ORDER_ATTEMPTS_PER_MEMBER", default=1),
        env.float("RATE_ORDER_WINDOW_SECONDS", default=0.5),
    ),
    "address": (env.int("RATE_ANONYMOUS_PER_IP", default=50), 1.0),
}
#: Routes (path regexes of GATEWAY_ROUTES) limited per member by "order_member".
GATEWAY_MEMBER_LIMITED_ROUTES = [r"/orders/add", r"/orders/add/Wishlist"]

# Answers a service marks as the same for any identical request for a moment (the order
# service's remembered sold-out answer; the catalog's cached reads, while its versions in
# Redis stay the same) are repeated by the gateway itself: at most this many per process
# (0: never), each for at most this long (gateway/answers.py).
GATEWAY_SAME_ANSWER_ENTRIES = env.int("GATEWAY_SAME_ANSWER_ENTRIES", default=256)
GATEWAY_SAME_ANSWER_MAX_SECONDS = env.float("GATEWAY_SAME_ANSWER_MAX_SECONDS", default=2.0)

# Django logs each 4xx answer again after the request is done (without its request id);
# the gateway's access line already says it, with the id.
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}  # noqa: F821 - from service_settings

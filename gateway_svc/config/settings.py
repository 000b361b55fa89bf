"""Settings of the gateway: no database, no admin, no sessions; a routing allowlist.

The gateway verifies the access token at the edge and forwards the public API, and only
the public API, to the services. Anything not in ``GATEWAY_ROUTES`` is a 404.
"""

from pathlib import Path

from shared.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings("gateway", base_dir=BASE_DIR, apps=["gateway"], database=False)
globals().update(_shared)

# The hot path is one plain Django view: nothing else runs per request.
INSTALLED_APPS = ["gateway"]
MIDDLEWARE = ["shared.requests.RequestIdMiddleware", "shared.errors.JsonErrorMiddleware"]
TEMPLATES: list = []
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
APPEND_SLASH = False
for _unused in (
    "REST_FRAMEWORK",
    "SPECTACULAR_SETTINGS",
    "CELERY_BEAT_SCHEDULE",
    "STATIC_ROOT",
    "WHITENOISE_USE_FINDERS",
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
#: The services the gateway fronts (health and API docs); the routes name them too.
GATEWAY_SERVICES = ["member", "catalog", "order", "inventory", "payment"]

# Django logs each 4xx answer again after the request is done (without its request id);
# the gateway's access line already says it, with the id.
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}  # noqa: F821 - from service_settings

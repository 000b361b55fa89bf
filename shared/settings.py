"""Django settings every service shares, read from the environment in one place.

A service's ``config/settings.py`` calls :func:`service_settings` and updates its
module globals with the result, then adds what is its own. Defaults work on a
developer machine (PostgreSQL and Redis on 127.0.0.1); nothing secret is kept here:
the dev stack writes random secrets to ``.run/<stack>/secrets.env`` and passes them in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ

from shared.topology import SERVICE_PORTS, database_name, service_url_variable

env = environ.Env()

_DEV_ONLY_SECRET = "dev-only-insecure-secret-change-me"


def service_settings(
    name: str, *, base_dir: Path, apps: list[str], database: bool = True, cache_outage_is_a_miss: bool = False
) -> dict[str, Any]:
    """Return the settings dict for service ``name`` (e.g. "order").

    ``apps`` are the service's own Django apps; the shared ones are added here. With
    ``cache_outage_is_a_miss`` the Django cache answers a Redis outage as a miss (get: None,
    set and delete: nothing; django-redis's ``IGNORE_EXCEPTIONS``, logged) instead of
    raising: for a service whose every use of the cache is an optimisation.
    """
    debug = env.bool("DJANGO_DEBUG", default=False)
    redis_url = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
    settings: dict[str, Any] = {
        "SERVICE_NAME": name,
        "BASE_DIR": base_dir,
        "SECRET_KEY": env.str("DJANGO_SECRET_KEY", default=_DEV_ONLY_SECRET),
        "DEBUG": debug,
        "ALLOWED_HOSTS": env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"]),
        "ROOT_URLCONF": "config.urls",
        # A body over this is refused (413 payload_too_large) before it is read.
        "DATA_UPLOAD_MAX_MEMORY_SIZE": env.int("REQUEST_MAX_BODY_BYTES", default=2_621_440),
        "WSGI_APPLICATION": "config.wsgi.application",
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "LANGUAGE_CODE": "en-us",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "STATIC_URL": "/static/",
        "STATIC_ROOT": env.str("STATIC_ROOT", default=None),
        # The admin's CSS/JS straight from the installed apps: no collectstatic step to forget.
        "WHITENOISE_USE_FINDERS": True,
        "INSTALLED_APPS": [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "rest_framework",
            "drf_spectacular",
            "shared.messaging",
            *apps,
        ],
        "MIDDLEWARE": [
            "shared.metrics.RequestMetricsMiddleware",
            "shared.requests.RequestIdMiddleware",
            "shared.internal_auth.InternalAuthMiddleware",
            "shared.errors.JsonErrorMiddleware",
            "django.middleware.security.SecurityMiddleware",
            "whitenoise.middleware.WhiteNoiseMiddleware",
            "django.middleware.common.CommonMiddleware",
            "shared.admin_chain.AdminMiddleware",
        ],
        # The browser's middleware, for /admin/ requests only (shared.admin_chain): the API
        # carries no cookie and reads no session.
        "ADMIN_MIDDLEWARE": [
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "shared.staff.StaffSignInMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        # The admin's checks for its middleware look in MIDDLEWARE; it runs inside
        # shared.admin_chain.AdminMiddleware instead.
        "SILENCED_SYSTEM_CHECKS": ["admin.E408", "admin.E409", "admin.E410"],
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "DATABASES": {"default": _database(name)},
        "CACHES": {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": name,
                "OPTIONS": {
                    "CLIENT_CLASS": "django_redis.client.DefaultClient",
                    "IGNORE_EXCEPTIONS": cache_outage_is_a_miss,
                },
            }
        },
        # An outage the cache ignores is still a log line.
        "DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS": True,
        "REDIS_URL": redis_url,
        # Browsers send cookies to every port of a host: each service names its own, and the
        # one staff sign-in travels in the shared, signed "shop_staff" cookie (shared.staff).
        "SESSION_COOKIE_NAME": f"{name}_sessionid",
        "CSRF_COOKIE_NAME": f"{name}_csrftoken",
        "STAFF_SIGN_IN_SECONDS": env.int("STAFF_SIGN_IN_SECONDS", default=12 * 3600),
        "REST_FRAMEWORK": {
            "DEFAULT_AUTHENTICATION_CLASSES": ["shared.internal_auth.GatewayIdentityAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": ["shared.internal_auth.IsMember"],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "DEFAULT_PARSER_CLASSES": ["shared.parsers.JSONParser"],
            "EXCEPTION_HANDLER": "shared.errors.exception_handler",
            "DEFAULT_SCHEMA_CLASS": "shared.openapi.ShopAutoSchema",
            "DEFAULT_PAGINATION_CLASS": "shared.pagination.PageNumberPagination",
            "PAGE_SIZE": 20,
            "UNAUTHENTICATED_USER": None,
        },
        "SPECTACULAR_SETTINGS": {
            "TITLE": f"{name} service API",
            "VERSION": "1.0.0",
            "SERVE_INCLUDE_SCHEMA": False,
            "COMPONENT_SPLIT_REQUEST": True,
            # No route takes part of a resource: a PATCH body (the password change) is a whole one.
            "COMPONENT_SPLIT_PATCH": False,
        },
        # Shared secret between the gateway and the services: a request carrying it came
        # from inside, so its identity headers can be trusted.
        "INTERNAL_API_SECRET": env.str("INTERNAL_API_SECRET", default=_DEV_ONLY_SECRET + "-internal"),
        "JWT_SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=_DEV_ONLY_SECRET + "-jwt"),
        "JWT_ACCESS_TTL_SECONDS": env.int("JWT_ACCESS_TTL_SECONDS", default=300),
        "JWT_REFRESH_TTL_SECONDS": env.int("JWT_REFRESH_TTL_SECONDS", default=14 * 24 * 3600),
        # Kafka
        "KAFKA_BOOTSTRAP_SERVERS": env.str("KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:9092"),
        "KAFKA_TOPIC_PREFIX": env.str("KAFKA_TOPIC_PREFIX", default=""),
        # Partitions of the topics the consumers create. One consumer per service reads all of
        # a topic's partitions, and the bundled broker's work per fetch grows with them (idle,
        # each consumer fetches twice a second); more only pays with more consumers per group.
        "KAFKA_TOPIC_PARTITIONS": env.int("KAFKA_TOPIC_PARTITIONS", default=1),
        "OUTBOX_BATCH_SIZE": env.int("OUTBOX_BATCH_SIZE", default=500),
        "OUTBOX_WAKE_MS": env.int("OUTBOX_WAKE_MS", default=200),
        # How often the relay asks whether the broker came back empty, and how far back it
        # then publishes again (shared.messaging.recovery). 0 turns the check off.
        "OUTBOX_BROKER_CHECK_SECONDS": env.float("OUTBOX_BROKER_CHECK_SECONDS", default=5.0),
        "OUTBOX_REPLAY_WINDOW_SECONDS": env.int("OUTBOX_REPLAY_WINDOW_SECONDS", default=3600),
        "CONSUMER_MAX_ATTEMPTS": env.int("CONSUMER_MAX_ATTEMPTS", default=3),
        # How long delivered events are kept (shared.maintenance.purge_old_events; 0: for ever):
        # published outbox rows (never less than the replay window above), and the inbox's rows,
        # which must outlive the broker's own retention (Kafka keeps 7 days by default): a
        # consumer group that lost its offsets reads its topics again from the start, and only
        # the inbox stops those events from being applied twice.
        "OUTBOX_RETENTION_SECONDS": env.int("OUTBOX_RETENTION_SECONDS", default=7 * 86400),
        "INBOX_RETENTION_SECONDS": env.int("INBOX_RETENTION_SECONDS", default=14 * 86400),
        "EVENT_PURGE_BATCH": env.int("EVENT_PURGE_BATCH", default=5000),
        # Celery: Redis broker, one queue per service so services never take each other's jobs.
        "CELERY_BROKER_URL": env.str("CELERY_BROKER_URL", default=redis_url),
        "CELERY_TASK_DEFAULT_QUEUE": name,
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        # Beat's relay run is the safety net: a commit that wrote an event wakes the relay at
        # once (OUTBOX_WAKE_MS), so the sweep only finds rows whose wake-up was lost or whose
        # retry fell due. A sweep that finds nothing still costs about 15 ms of CPU (beat's
        # send, the worker's receipt, the lock, the broker check, the empty read): every 5 s
        # across five services that was 1.5 % of a core, doing nothing.
        "CELERY_BEAT_SCHEDULE": {
            "publish-outbox": {
                "task": "shared.messaging.tasks.publish_outbox",
                "schedule": env.float("OUTBOX_SWEEP_SECONDS", default=15.0),
                "options": {"expires": 10},
            },
            # The outbox and the counters churn: vacuum them if autovacuum has not (shared.maintenance).
            "vacuum-churned-tables": {
                "task": "shared.maintenance.vacuum_churned_tables",
                "schedule": env.float("DB_VACUUM_SWEEP_SECONDS", default=60.0),
                "options": {"expires": 120},
            },
            "purge-old-events": {
                "task": "shared.maintenance.purge_old_events",
                "schedule": env.float("EVENT_PURGE_SWEEP_SECONDS", default=3600.0),
                "options": {"expires": 3600},
            },
        },
        "DB_VACUUM_DEAD_ROWS": env.int("DB_VACUUM_DEAD_ROWS", default=1000),
        "DB_VACUUM_DEAD_FRACTION": env.float("DB_VACUUM_DEAD_FRACTION", default=0.05),
        # Upstream calls (service to service)
        "UPSTREAM_TIMEOUT_SECONDS": env.float("UPSTREAM_TIMEOUT_SECONDS", default=5.0),
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": env.float("UPSTREAM_CONNECT_TIMEOUT_SECONDS", default=1.0),
        # A pooled connection idle longer than this is closed before reuse: the web servers end
        # idle keep-alive connections after 30 s (shared.keepalive).
        "UPSTREAM_IDLE_REUSE_SECONDS": env.float("UPSTREAM_IDLE_REUSE_SECONDS", default=15.0),
        "SERVICE_URLS": {
            svc: env.str(service_url_variable(svc), default=f"http://127.0.0.1:{port}")
            for svc, port in SERVICE_PORTS.items()
        },
        # Where a browser reaches each service's admin (links from one admin to another).
        "ADMIN_URLS": {
            svc: env.str(
                f"{svc.upper()}_ADMIN_URL",
                default=env.str(f"{svc.upper()}_SERVICE_URL", default=f"http://127.0.0.1:{port}"),
            )
            for svc, port in SERVICE_PORTS.items()
        },
        "LOGGING": _logging(name, env.str("LOG_LEVEL", default="INFO"), env.float("LOG_FLUSH_MS", default=100)),
    }
    if not database:
        settings["DATABASES"] = {}
    return settings


def _database(name: str) -> dict[str, Any]:
    """The service's own database, through a small psycopg connection pool per process.

    Opening a PostgreSQL connection costs milliseconds; a pool shared by a worker's threads
    keeps a few open without one connection per thread (the server allows 100 in all).

    Values go to PostgreSQL as parameters of the statement (``server_side_binding``), not
    quoted into its text by psycopg in Python: an outbox row's insert cost its process
    a median 204-216 µs of CPU against 239-270 µs quoted. Statements are not prepared (Django
    leaves psycopg's ``prepare_threshold`` off), so a migration never meets a stale plan.
    """
    db = env.db_url("DATABASE_URL", default=f"postgres://postgres@127.0.0.1:5432/{database_name(name)}")
    if env.bool("DB_POOL", default=True):
        db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=4),
            "timeout": env.float("DB_POOL_TIMEOUT_SECONDS", default=10.0),
        }
    if env.bool("DB_SERVER_SIDE_BINDING", default=True):
        db.setdefault("OPTIONS", {})["server_side_binding"] = True
    return db


def _logging(name: str, level: str, flush_ms: float) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "shared.requests.RequestIdLogFilter"}},
        "formatters": {
            "line": {
                "format": f"%(asctime)s %(levelname)s {name} [%(request_id)s] %(name)s: %(message)s",
            }
        },
        "handlers": {
            # Lines below WARNING leave in batches, at most flush_ms after the first (shared/logbuffer.py).
            "console": {
                "class": "shared.logbuffer.BatchingStreamHandler",
                "flush_ms": flush_ms,
                "formatter": "line",
                "filters": ["request_id"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # A 4xx is an answer to the client (sold out, bad input), not a problem of ours:
            # logging each one costs more than the answer itself in a drop. 5xx still log.
            "django.request": {"level": "ERROR"},
            "kafka": {"level": "WARNING"},
        },
    }

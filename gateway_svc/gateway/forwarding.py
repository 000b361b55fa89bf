"""Forwarding a request to a service over one keep-alive connection pool per process.

``POOL`` is module level: each gunicorn worker imports this after the fork and keeps
its own connections. No retries (a POST must not be sent twice), except once for a GET
whose pooled connection turned out to be closed by the service.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from django.conf import settings

from shared import keepalive
from shared.errors import UpstreamTimeout, UpstreamUnavailable

logger = logging.getLogger(__name__)

# Connections idle past UPSTREAM_IDLE_REUSE_SECONDS are closed before a service's web
# server ends them under a request (shared.keepalive).
POOL = keepalive.Pools(maxsize=settings.GATEWAY_POOL_MAXSIZE, idle_reuse_seconds=settings.UPSTREAM_IDLE_REUSE_SECONDS)

_SAFE_RETRY = frozenset({"GET", "HEAD"})


def upstream_path(path: str, query: str = "") -> str:
    # The path is the one the allowlist matched, quoted again: what was checked is what is sent.
    quoted = quote(path, safe="/")
    return f"{quoted}?{query}" if query else quoted


def pool(service: str) -> keepalive.Pool:
    return POOL.for_url(settings.SERVICE_URLS[service].rstrip("/"))


def send(
    service: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    read_timeout: float | None = None,
) -> keepalive.Answer:
    """One upstream request; raise UpstreamTimeout (504) when slow, UpstreamUnavailable (503) when down."""
    try:
        return pool(service).request(
            method,
            path,
            headers=headers,
            body=body,
            connect_timeout=settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS,
            read_timeout=read_timeout if read_timeout is not None else settings.UPSTREAM_TIMEOUT_SECONDS,
            repeat_if_dropped=method in _SAFE_RETRY,  # a GET or HEAD only: a POST is never sent twice
        )
    except keepalive.TimedOut as exc:
        logger.warning("upstream %s timed out: %s %s", service, method, path)
        raise UpstreamTimeout(f"The {service} service did not answer in time.") from exc
    except keepalive.Dropped as exc:
        logger.warning("upstream %s dropped the connection: %s %s: %s", service, method, path, exc)
        raise UpstreamUnavailable(f"The {service} service is unavailable.") from exc
    except keepalive.ConnectFailed as exc:  # refused, unreachable, connect timeout
        logger.warning("upstream %s unavailable: %s %s: %s", service, method, path, exc)
        raise UpstreamUnavailable(f"The {service} service is unavailable.") from exc

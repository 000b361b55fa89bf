"""Forwarding a request to a service over one keep-alive connection pool per process.

``POOL`` is module level: each gunicorn worker imports this after the fork and keeps
its own connections. No retries (a POST must not be sent twice), except once for a GET
whose pooled connection turned out to be closed by the service.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import urllib3
from django.conf import settings
from urllib3.exceptions import HTTPError, ProtocolError, ReadTimeoutError

from shared.errors import UpstreamTimeout, UpstreamUnavailable
from shared.upstream import pool_manager

logger = logging.getLogger(__name__)

# Connections idle past UPSTREAM_IDLE_REUSE_SECONDS are retired before a service's web
# server ends them under a request (shared.upstream.FreshConnectionPool).
POOL = pool_manager(num_pools=16, maxsize=settings.GATEWAY_POOL_MAXSIZE, block=False, retries=False)

_SAFE_RETRY = frozenset({"GET", "HEAD"})


def upstream_url(service: str, path: str, query: str = "") -> str:
    # The path is the one the allowlist matched, quoted again: what was checked is what is sent.
    url = settings.SERVICE_URLS[service].rstrip("/") + quote(path, safe="/")
    return f"{url}?{query}" if query else url


def timeout(read: float | None = None) -> urllib3.Timeout:
    return urllib3.Timeout(
        connect=settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS,
        read=read if read is not None else settings.UPSTREAM_TIMEOUT_SECONDS,
    )


def send(
    service: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    read_timeout: float | None = None,
) -> urllib3.BaseHTTPResponse:
    """One upstream request; raise UpstreamTimeout (504) when slow, UpstreamUnavailable (503) when down."""
    attempts = 2 if method in _SAFE_RETRY else 1
    for attempt in range(attempts):
        try:
            return POOL.request(
                method,
                url,
                body=body,
                headers=headers,
                timeout=timeout(read_timeout),
                redirect=False,
                preload_content=True,
            )
        except ReadTimeoutError as exc:
            logger.warning("upstream %s timed out: %s %s", service, method, url)
            raise UpstreamTimeout(f"The {service} service did not answer in time.") from exc
        except ProtocolError as exc:  # a kept-alive connection the service had closed
            if attempt + 1 < attempts:
                continue
            logger.warning("upstream %s dropped the connection: %s %s: %s", service, method, url, exc)
            raise UpstreamUnavailable(f"The {service} service is unavailable.") from exc
        except HTTPError as exc:  # refused, unreachable, connect timeout (NewConnectionError is a TimeoutError)
            logger.warning("upstream %s unavailable: %s %s: %s", service, method, url, exc)
            raise UpstreamUnavailable(f"The {service} service is unavailable.") from exc
    raise AssertionError("unreachable")

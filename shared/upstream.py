"""Calls from one service to another: pooled keep-alive connections, short timeouts.

Errors come back as the shop's errors: a service that is down is ``UpstreamUnavailable``
(503), one that is slow ``UpstreamTimeout`` (504); a 4xx answer is re-raised as the
matching ``ShopError`` so the caller's client sees the upstream's code.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import urllib3
from django.conf import settings

from shared import errors
from shared.internal_auth import internal_headers
from shared.requests import current_request_id

logger = logging.getLogger(__name__)

_pool: urllib3.PoolManager | None = None


class FreshConnectionPool(urllib3.HTTPConnectionPool):
    """A connection pool that retires a connection idle for UPSTREAM_IDLE_REUSE_SECONDS.

    The services' web servers end a kept-alive connection idle for 30 s. A request sent on
    one just as the server ends it is lost without an answer, and a POST may not simply be
    sent again. Retiring connections well before the server does closes that window; one
    idle less long is reused (urllib3 already notices one the server closed earlier).
    """

    def _get_conn(self, timeout: float | None = None):
        conn = super()._get_conn(timeout)
        last_used = getattr(conn, "shop_last_used", None)
        if last_used is not None and time.monotonic() - last_used > settings.UPSTREAM_IDLE_REUSE_SECONDS:
            conn.close()  # connected again on its next use
        return conn

    def _put_conn(self, conn) -> None:
        if conn is not None:
            conn.shop_last_used = time.monotonic()
        super()._put_conn(conn)


def pool_manager(**kwargs: Any) -> urllib3.PoolManager:
    """A urllib3 PoolManager whose plain-HTTP pools retire idle connections (FreshConnectionPool)."""
    manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, "http": FreshConnectionPool}
    return manager


def pool() -> urllib3.PoolManager:
    """One pool per process (web worker), created lazily after fork."""
    global _pool
    if _pool is None:
        _pool = pool_manager(num_pools=16, maxsize=32, block=False, retries=False)
    return _pool


class UpstreamError(errors.ShopError):
    """An upstream answered with an error code we have no class for."""


def call(
    service: str,
    method: str,
    path: str,
    *,
    idempotent: bool,
    body: Any = None,
    member_id: int | None = None,
    timeout: float | None = None,
) -> tuple[int, Any]:
    """Call ``service`` (a key of SERVICE_URLS) and return (status, parsed JSON or None).

    ``idempotent`` says whether the callee may safely see the call twice (a read, or a write
    keyed by an id it dedupes). Only such a call is sent again, once and at once on a new
    connection, when its connection broke before any answer: most often a kept-alive one
    the callee had just closed. Raises ``UpstreamUnavailable`` / ``UpstreamTimeout`` when
    no answer comes.
    """
    base = settings.SERVICE_URLS[service].rstrip("/")
    headers = internal_headers(member_id=member_id, request_id=current_request_id())
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    read = timeout or settings.UPSTREAM_TIMEOUT_SECONDS
    request = {
        "method": method,
        "body": data,
        "headers": headers,
        "timeout": urllib3.Timeout(connect=settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS, read=read),
    }
    try:
        try:
            resp = pool().request(url=base + path, **request)
        except urllib3.exceptions.ProtocolError as exc:
            if not idempotent:
                raise
            logger.info(
                "upstream %s dropped the connection on %s %s (%s); sending it again", service, method, path, exc
            )
            # Another pooled connection may be just as stale: this one is new, used once, closed.
            with urllib3.connection_from_url(base, maxsize=1, retries=False) as fresh:
                resp = fresh.urlopen(url=path, **request)
    except urllib3.exceptions.NewConnectionError as exc:
        # Checked first: urllib3 makes a refused connection a kind of timeout error too.
        logger.warning("upstream %s unavailable on %s %s: %s", service, method, path, exc)
        raise errors.UpstreamUnavailable(f"The {service} service is unavailable.") from exc
    except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.TimeoutError) as exc:
        logger.warning("upstream %s timed out on %s %s: %s", service, method, path, exc)
        raise errors.UpstreamTimeout(f"The {service} service did not answer in time.") from exc
    except urllib3.exceptions.HTTPError as exc:
        logger.warning("upstream %s unavailable on %s %s: %s", service, method, path, exc)
        raise errors.UpstreamUnavailable(f"The {service} service is unavailable.") from exc
    parsed = None
    if resp.data:
        try:
            parsed = json.loads(resp.data)
        except ValueError:
            parsed = None
    return resp.status, parsed


def call_ok(service: str, method: str, path: str, **kw: Any) -> Any:
    """Like :func:`call`, but any non-2xx answer is raised as a ShopError with the upstream's code."""
    status, parsed = call(service, method, path, **kw)
    if 200 <= status < 300:
        return parsed
    raise_for_answer(service, status, parsed)


def raise_for_answer(service: str, status: int, parsed: Any) -> None:
    err = (parsed or {}).get("error", {}) if isinstance(parsed, dict) else {}
    code = err.get("code", "upstream_error")
    message = err.get("message", f"The {service} service answered {status}.")
    if status >= 500:
        raise errors.UpstreamUnavailable(message)
    # Extra keys (e.g. the sold-out ``variant_id``) pass on to our own client unchanged.
    extra = {k: v for k, v in err.items() if k not in ("code", "message", "fields")}
    exc = UpstreamError(message, fields=err.get("fields"), **extra)
    exc.status_code = status
    exc.code = code
    raise exc

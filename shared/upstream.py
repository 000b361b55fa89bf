"""Calls from one service to another: pooled keep-alive connections, short timeouts.

Errors come back as the shop's errors: a service that is down is ``UpstreamUnavailable``
(503), one that is slow ``UpstreamTimeout`` (504); a 4xx answer is re-raised as the
matching ``ShopError`` so the caller's client sees the upstream's code.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings

from shared import errors, keepalive
from shared.internal_auth import internal_headers
from shared.requests import current_request_id

logger = logging.getLogger(__name__)

_pools: keepalive.Pools | None = None


def pool() -> keepalive.Pools:
    """One set of kept-alive connections per process (web worker), made lazily after fork.

    Connections idle past UPSTREAM_IDLE_REUSE_SECONDS are closed rather than reused: the
    services' web servers end idle kept-alive connections after 30 s (shared.keepalive).
    """
    global _pools
    if _pools is None:
        _pools = keepalive.Pools(maxsize=32, idle_reuse_seconds=settings.UPSTREAM_IDLE_REUSE_SECONDS)
    return _pools


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
    target = pool().for_url(settings.SERVICE_URLS[service].rstrip("/"))
    headers = internal_headers(member_id=member_id, request_id=current_request_id())
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        resp = target.request(
            method,
            path,
            headers=headers,
            body=data,
            connect_timeout=settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS,
            read_timeout=timeout or settings.UPSTREAM_TIMEOUT_SECONDS,
            repeat_if_dropped=idempotent,
        )
    except keepalive.ConnectFailed as exc:
        if exc.timed_out:
            logger.warning("upstream %s timed out connecting on %s %s: %s", service, method, path, exc)
            raise errors.UpstreamTimeout(f"The {service} service did not answer in time.") from exc
        logger.warning("upstream %s unavailable on %s %s: %s", service, method, path, exc)
        raise errors.UpstreamUnavailable(f"The {service} service is unavailable.") from exc
    except keepalive.TimedOut as exc:
        logger.warning("upstream %s timed out on %s %s: %s", service, method, path, exc)
        raise errors.UpstreamTimeout(f"The {service} service did not answer in time.") from exc
    except keepalive.Dropped as exc:
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

"""The gateway's views: the proxy (hot path, plain Django), health, the public API's docs."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import RedisError

from gateway import apidocs, forwarding, routes, sessions
from shared.errors import NotAuthenticated, ShopError, TokenInvalid, UpstreamUnavailable, error_body
from shared.internal_auth import CALLER_HEADER, INTERNAL_TOKEN_HEADER, MEMBER_ID_HEADER, SESSION_ID_HEADER
from shared.redis import get_redis
from shared.requests import REQUEST_ID_HEADER

logger = logging.getLogger("gateway.access")

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOGIN_FIRST = "Log in first: this route needs an access token (Authorization: Bearer ...)."


def _meta_key(header: str) -> str:
    return "CONTENT_TYPE" if header == "Content-Type" else "HTTP_" + header.upper().replace("-", "_")


def _error(exc: ShopError, **headers: str) -> JsonResponse:
    response = JsonResponse(error_body(exc.code, exc.message), status=exc.status_code)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _bearer(request: HttpRequest) -> str | None:
    raw = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@csrf_exempt
def proxy(request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    path = request.path_info
    route, allowed = routes.match(request.method, path)
    if route is None:
        if allowed:
            response = JsonResponse(
                error_body("method_not_allowed", f"{request.method} is not allowed here."), status=405
            )
            response["Allow"] = ", ".join(sorted(allowed))
            return response
        return JsonResponse(error_body("not_found", "Not found."), status=404)

    try:
        # The Host goes on, so links a service builds (a page's next/previous) name the gateway
        # the client used; without one (HTTP/1.0), the gateway's own name, never the service's.
        host = request.get_host()
    except DisallowedHost:
        return JsonResponse(error_body("bad_request", "Unknown host."), status=400)

    # Only the headers we name go on: identity headers a client sent never reach a service.
    meta = request.META
    headers = {name: meta[key] for name in settings.GATEWAY_FORWARD_HEADERS if (key := _meta_key(name)) in meta}
    headers["Host"] = host
    headers[INTERNAL_TOKEN_HEADER] = settings.INTERNAL_API_SECRET
    headers[CALLER_HEADER] = "gateway"
    headers[REQUEST_ID_HEADER] = request.request_id
    headers["X-Forwarded-For"] = meta.get("REMOTE_ADDR", "")

    member = "-"
    if not route.public:
        token = _bearer(request)
        if token is None:
            return _error(NotAuthenticated(_LOGIN_FIRST), WWW_Authenticate='Bearer realm="shop"')
        try:
            claims = sessions.verify(token)
        except TokenInvalid as exc:
            return _error(exc, WWW_Authenticate='Bearer realm="shop", error="invalid_token"')
        except RedisError as exc:
            logger.error("token revocation store unreachable: %s", exc)
            return _error(UpstreamUnavailable("Sign-in cannot be checked right now; try again shortly."))
        except ShopError as exc:  # the revocations were lost and could not be restored
            return _error(exc)
        member = claims["sub"]
        headers[MEMBER_ID_HEADER] = member
        headers[SESSION_ID_HEADER] = claims["sid"]

    body = request.body if request.method in _BODY_METHODS else None
    try:
        upstream = forwarding.send(
            route.service,
            request.method,
            forwarding.upstream_url(route.service, path, meta.get("QUERY_STRING", "")),
            headers=headers,
            body=body,
        )
    except ShopError as exc:
        return _error(exc)

    response = HttpResponse(
        upstream.data, status=upstream.status, content_type=upstream.headers.get("Content-Type", "application/json")
    )
    for name in settings.GATEWAY_RETURN_HEADERS:
        value = upstream.headers.get(name)
        if value is not None and name != "Content-Type":
            response[name] = value
    if settings.GATEWAY_ACCESS_LOG:
        logger.info(
            "%s %s -> %s %s member=%s %.1fms",
            request.method,
            path,
            route.service,
            upstream.status,
            member,
            (time.perf_counter() - started) * 1000,
        )
    return response


_health_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


def _service_health(service: str) -> str:
    try:
        answer = forwarding.POOL.request(
            "GET",
            settings.SERVICE_URLS[service].rstrip("/") + "/health",
            headers={REQUEST_ID_HEADER: "health"},
            retries=False,
            timeout=settings.GATEWAY_HEALTH_TIMEOUT_SECONDS,
        )
    except Exception:  # noqa: BLE001 - anything that is not an answer means down
        return "down"
    if answer.status != 200:
        return "down"
    try:
        return "degraded" if answer.json().get("status") == "degraded" else "ok"
    except ValueError:
        return "down"


def health(request: HttpRequest) -> JsonResponse:
    """Every service's /health, asked at once; 503 naming those that are down."""
    names = list(settings.GATEWAY_SERVICES)
    services = dict(zip(names, _health_pool.map(_service_health, names), strict=True))
    try:
        get_redis().ping()
        redis = "ok"
    except RedisError:
        redis = "down"
    down = [name for name, state in services.items() if state == "down"]
    status = "down" if down or redis == "down" else ("degraded" if "degraded" in services.values() else "ok")
    body = {"status": status, "services": services, "checks": {"redis": redis}}
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if status == "down" else 200)


def schema(request: HttpRequest) -> JsonResponse:
    """The public API's OpenAPI document: every service's, internal routes left out."""
    return JsonResponse(apidocs.public_schema())


def docs(request: HttpRequest) -> HttpResponse:
    """A self-contained page listing the public API (no CDN assets: works offline)."""
    return HttpResponse(apidocs.render_html(apidocs.public_schema()), content_type="text/html; charset=utf-8")

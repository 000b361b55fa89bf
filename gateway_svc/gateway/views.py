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

from gateway import admission, answers, apidocs, early, forwarding, limits, routes, sessions
from shared import gunicorn_worker, tokens
from shared.errors import (
    NotAuthenticated,
    RateLimited,
    ShopError,
    TokenInvalid,
    UpstreamUnavailable,
    error_body,
)
from shared.internal_auth import CALLER_HEADER, INTERNAL_TOKEN_HEADER, MEMBER_ID_HEADER, SESSION_ID_HEADER
from shared.metrics import render as render_metrics
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
    if isinstance(exc, (RateLimited, admission.Overloaded)):
        response["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, admission.Overloaded):
        # A refusal is an answer the gateway chose, counted by /metrics (requests by status)
        # and shown by /health (shedding): not an error line per request, as django.request
        # writes for every 5xx, which under a drop's flood costs the CPU refusing saves.
        response._has_been_logged = True  # Django's own mark against logging a response twice
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
    request.metrics_view = route.pattern.pattern if route is not None else "unrouted"
    if route is None:
        if allowed:
            response = JsonResponse(
                error_body("method_not_allowed", f"{request.method} is not allowed here."), status=405
            )
            response["Allow"] = ", ".join(sorted(allowed))
            return response
        return JsonResponse(error_body("not_found", "Not found."), status=404)

    waited = admission.waited_for_a_thread(request.META)
    if admission.too_late(waited):  # before anything else: the token, Redis, the gate
        admission.gate(route.service).refuse_late()
        return _overloaded(route, _member_to_hold(request, route), request)

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
    counted = limits.limit(route.limit) if route.limit else None
    read_ahead: tuple[answers.Found, list | None] | None = None
    if route.public:
        if counted is not None:
            # A read the gateway may repeat has its condition read with the address's count: one round trip.
            found = None if request.method in _BODY_METHODS else answers.find(request.method, path, meta, None)
            values = None
            try:
                values = limits.hit(counted, meta.get("REMOTE_ADDR", ""), then_read=answers.watched(found))
            except RateLimited as exc:
                return _error(exc)
            except RedisError as exc:  # a limit that cannot be counted does not close the shop
                logger.error("rate limit store unreachable, request let through: %s", exc)
            if found is not None:
                read_ahead = (found, values)
    else:
        token = _bearer(request)
        if token is None:
            return _error(NotAuthenticated(_LOGIN_FIRST), WWW_Authenticate='Bearer realm="shop"')
        try:
            claims = sessions.verify(token, counted=counted)
        except TokenInvalid as exc:
            return _error(exc, WWW_Authenticate='Bearer realm="shop", error="invalid_token"')
        except RedisError as exc:
            logger.error("token revocation store unreachable: %s", exc)
            return _error(UpstreamUnavailable("Sign-in cannot be checked right now; try again shortly."))
        except limits.OverLimit as exc:  # over the member's limit: held to the Retry-After told
            if counted is not None and route.limit == limits.ORDER_MEMBER:
                if not exc.first:  # a hold's later refusal: left as it is
                    early.remember_hold(meta.get("HTTP_AUTHORIZATION", ""), time.monotonic() + exc.left)
                else:
                    _hold_to(counted, _member_to_hold(request, route), request, exc.retry_after)
            return _error(exc)
        except ShopError as exc:  # the revocations were lost and not restored
            return _error(exc)
        member = claims["sub"]
        headers[MEMBER_ID_HEADER] = member
        headers[SESSION_ID_HEADER] = claims["sid"]

    body = request.body if request.method in _BODY_METHODS else None
    if read_ahead is not None:
        repeated = answers.repeat(*read_ahead)
    else:
        repeated = answers.recall(request.method, path, meta, body)
    if repeated is not None:
        return repeated  # the service said this request gets this answer for now (gateway/answers.py)
    gate = admission.gate(route.service)
    meta["shop.gate_at"] = time.monotonic()  # for the web server's timing log (shared/gunicorn_worker.py)
    if not gate.enter():
        return _overloaded(route, member if counted is not None else None, request)
    try:
        upstream = forwarding.send(
            route.service,
            request.method,
            forwarding.upstream_path(path, meta.get("QUERY_STRING", "")),
            headers=headers,
            body=body,
        )
    except ShopError as exc:
        return _error(exc)
    finally:
        gate.leave()
    answers.learn(route.service, request.method, path, meta, body, upstream)

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


def _member_to_hold(request: HttpRequest, route: routes.Route) -> str | None:
    """The member of a refused order placement, from its token's signature alone (no Redis):
    held as a gate refusal holds them; a forged or expired token holds nobody."""
    if route.limit != limits.ORDER_MEMBER or limits.limit(route.limit) is None:
        return None
    token = _bearer(request)
    if token is None:
        return None
    try:
        return str(tokens.decode_access_token(token)["sub"])
    except ShopError:
        return None


def _overloaded(route: routes.Route, member: str | None, request: HttpRequest) -> JsonResponse:
    """503 overloaded with a jittered Retry-After; an order placement's member is held to it
    (in Redis, and in this process by the request's Authorization header)."""
    refused = admission.Overloaded(
        f"The {route.service} service is at capacity; try again in a moment.", retry_after=admission.retry_after()
    )
    counted = limits.limit(route.limit) if route.limit else None
    if counted is not None and route.limit == limits.ORDER_MEMBER:
        _hold_to(counted, member, request, refused.retry_after)
    return _error(refused)


def _hold_to(counted: limits.Limit, member: str | None, request: HttpRequest, retry_after: int) -> None:
    """Hold a refused order placement's member to the Retry-After they were told: coming back
    sooner is refused before the gate (fairness: see limits.py), in Redis and in this process
    (by the request's Authorization header)."""
    if member is None:
        return
    early.remember_hold(request.META.get("HTTP_AUTHORIZATION", ""), time.monotonic() + retry_after)
    try:
        limits.hold(counted, member, retry_after)
    except RedisError as exc:
        logger.error("rate limit store unreachable, member %s not held: %s", member, exc)


_health_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


def _service_health(service: str) -> str:
    try:
        answer = forwarding.pool(service).request(
            "GET",
            "/health",
            headers={REQUEST_ID_HEADER: "health"},
            connect_timeout=settings.GATEWAY_HEALTH_TIMEOUT_SECONDS,
            read_timeout=settings.GATEWAY_HEALTH_TIMEOUT_SECONDS,
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
    """Every service's /health, asked at once; 503 naming those that are down.

    Never behind the admission gates: it answers while the gateway sheds load, and says so
    (``status: "shedding"``, ``shedding``: the services whose gate refused requests in the
    last ``GATEWAY_SHEDDING_WINDOW_SECONDS``, with this process's refusals so far).
    ``held_answers``: order placements of held members this process answered in its web
    server's main thread so far (shared/gunicorn_worker.py).
    """
    names = list(settings.GATEWAY_SERVICES)
    services = dict(zip(names, _health_pool.map(_service_health, names), strict=True))
    try:
        get_redis().ping()
        redis = "ok"
    except RedisError:
        redis = "down"
    down = [name for name, state in services.items() if state == "down"]
    shedding = admission.shedding()
    status = "down" if down or redis == "down" else ("degraded" if "degraded" in services.values() else "ok")
    if status == "ok" and shedding:
        status = "shedding"
    body = {
        "status": status,
        "services": services,
        "checks": {"redis": redis},
        "shedding": shedding,
        "admission": admission.states(),
        "held_answers": gunicorn_worker.held_early["count"],
    }
    if down:
        body["down"] = down
    return JsonResponse(body, status=503 if status == "down" else 200)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text of the gateway's processes, on GATEWAY_METRICS_PORT only: the public port says 404."""
    port = settings.GATEWAY_METRICS_PORT
    if not port or request.META.get("SERVER_PORT") != str(port):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    body, content_type = render_metrics()
    return HttpResponse(body, content_type=content_type)


def schema(request: HttpRequest) -> JsonResponse:
    """The public API's OpenAPI document: every service's, internal routes left out."""
    return JsonResponse(apidocs.public_schema())


def docs(request: HttpRequest) -> HttpResponse:
    """Swagger UI over the public API's document; its files come from this gateway, not a CDN."""
    return HttpResponse(apidocs.render_html(apidocs.public_schema()), content_type="text/html; charset=utf-8")


def docs_asset(request: HttpRequest, name: str) -> HttpResponse:
    """One of Swagger UI's files (drf-spectacular-sidecar), cached by the browser for a day."""
    found = apidocs.asset(name)
    if found is None:
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    content, content_type = found
    response = HttpResponse(content, content_type=content_type)
    response["Cache-Control"] = "public, max-age=86400"
    return response

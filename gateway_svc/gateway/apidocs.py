"""The public API's OpenAPI document, merged from the services', and Swagger UI over it.

Each service describes itself with drf-spectacular (``/api/schema``). The gateway keeps
only the operations its allowlist forwards, marks which need a token, adds the error
answers it gives itself, and caches the result (briefly when a service could not be
asked, so its part appears once it is up).
"""

from __future__ import annotations

import copy
import html
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import drf_spectacular_sidecar
from django.conf import settings

from gateway import forwarding, routes
from shared.internal_auth import internal_headers
from shared.openapi import ERROR_COMPONENT, ERROR_SCHEMA, error_response

logger = logging.getLogger(__name__)

_PARTIAL_CACHE_SECONDS = 10
_cache: dict[str, Any] = {"at": 0.0, "ttl": 0.0, "doc": None}
_lock = threading.Lock()
_METHODS = ("get", "post", "put", "patch", "delete")
#: What the gateway (or the web server in front of it) may answer to any request: a request
#: it cannot read (400, and 414 or 431 over the web server's limits), a service down or
#: overloaded (503) or slow (504).
_ANY_ROUTE_ERRORS = (400, 414, 431, 503, 504)
#: A body over REQUEST_MAX_BODY_BYTES is refused where the gateway reads one.
_BODY_METHODS = ("post", "put", "patch", "delete")


def public_schema() -> dict[str, Any]:
    with _lock:
        if _cache["doc"] is None or time.monotonic() - _cache["at"] > _cache["ttl"]:
            doc, complete = build_schema()
            _cache.update(
                doc=doc,
                at=time.monotonic(),
                ttl=settings.GATEWAY_SCHEMA_CACHE_SECONDS if complete else _PARTIAL_CACHE_SECONDS,
            )
        return _cache["doc"]


def clear_cache() -> None:
    with _lock:
        _cache.update(doc=None, at=0.0, ttl=0.0)


def _fetch(service: str) -> dict[str, Any] | None:
    try:
        answer = forwarding.pool(service).request(
            "GET",
            "/api/schema?format=json",
            headers={**internal_headers(), "Accept": "application/json"},
            connect_timeout=settings.UPSTREAM_CONNECT_TIMEOUT_SECONDS,
            read_timeout=3.0,
        )
        if answer.status == 200:
            return json.loads(answer.data)
        logger.warning("API schema of %s: answered %s", service, answer.status)
    except Exception as exc:  # noqa: BLE001 - a service down leaves its part out for now, no more
        logger.warning("API schema of %s unavailable: %s", service, exc)
    return None


def _route_for(method: str, template: str) -> routes.Route | None:
    concrete = re.sub(r"\{[^}]+\}", "1", template)  # /cloth/detail/{cloth_id} -> /cloth/detail/1
    route, _ = routes.match(method.upper(), concrete)
    return route


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.rsplit("/", 1)[-1]
                value = value[: -len(name)] + renames.get(name, name)
            out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def _gateway_errors(method: str, route: routes.Route) -> dict[str, Any]:
    statuses = set(_ANY_ROUTE_ERRORS)
    if not route.public:
        statuses.add(401)  # no token, or one that is invalid, expired or revoked
    if method in _BODY_METHODS:
        statuses.add(413)
    if route.limit:
        statuses.add(429)  # per client address (public routes) or per member (placing an order)
    return {str(status): error_response(status) for status in sorted(statuses)}


def build_schema() -> tuple[dict[str, Any], bool]:
    """(merged document, whether every service answered)."""
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "Drop Shop public API",
            "version": "1.0.0",
            "description": "Everything a shop frontend calls, through the gateway. Routes marked with a "
            "lock need `Authorization: Bearer <access_token>` from `POST /member/login`.",
        },
        "paths": {},
        "components": {
            "schemas": {ERROR_COMPONENT: ERROR_SCHEMA},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
    complete = True
    wanted = sorted({r.service for r in routes.all_routes()})
    for service in wanted:
        part = _fetch(service)
        if part is None:
            complete = False
            continue
        schemas = part.get("components", {}).get("schemas", {})
        renames = {
            name: f"{service.title()}{name}"
            for name, body in schemas.items()
            if name in doc["components"]["schemas"] and doc["components"]["schemas"][name] != body
        }
        part = _rename_refs(part, renames)
        # The component is stored under its new name too: only the references were renamed.
        for name, body in part.get("components", {}).get("schemas", {}).items():
            doc["components"]["schemas"][renames.get(name, name)] = body
        for template, operations in part.get("paths", {}).items():
            for method, operation in operations.items():
                if method not in _METHODS:
                    continue
                route = _route_for(method, template)
                if route is None or route.service != service:
                    continue  # internal or unknown: not part of the public API
                operation = copy.deepcopy(operation)
                operation["security"] = [] if route.public else [{"bearerAuth": []}]
                operation["tags"] = [service]
                responses = {**_gateway_errors(method, route), **operation.get("responses", {})}
                operation["responses"] = dict(sorted(responses.items()))
                doc["paths"].setdefault(template, {})[method] = operation
    doc["paths"] = dict(sorted(doc["paths"].items()))
    return doc, complete


#: Swagger UI's files, from drf-spectacular-sidecar (installed with the project: no CDN).
_ASSET_DIR = (
    Path(drf_spectacular_sidecar.__file__).resolve().parent / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist"
)
_ASSET_TYPES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_assets: dict[str, bytes] = {}


def asset(name: str) -> tuple[bytes, str] | None:
    """(content, content type) of one of Swagger UI's files, or None for any other name."""
    content_type = _ASSET_TYPES.get(name)
    if content_type is None:
        return None
    if name not in _assets:
        _assets[name] = (_ASSET_DIR / name).read_bytes()
    return _assets[name], content_type


def render_html(doc: dict[str, Any]) -> str:
    """Swagger UI over ``/api/schema``: "Authorize" takes an access token, "Try it out" calls this gateway."""
    title = html.escape(doc["info"]["title"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "/api/schema",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  docExpansion: "list",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
</script></body></html>"""

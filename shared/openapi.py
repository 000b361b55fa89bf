"""How the services' OpenAPI documents describe what every service shares: the bearer token and the errors.

Every service's ``DEFAULT_SCHEMA_CLASS`` is :class:`ShopAutoSchema`. It adds to each
operation the error answers it can give, all in the one shape of ``shared.errors``
(the ``Error`` component): 400 and 415 where a body or parameters are read, and what a
view declares with :func:`shop_errors`. The gateway adds its own (401 on routes that need
a token, 413, 503, 504, the web server's 414 and 431) when it merges the documents.

``GatewayIdentityScheme`` tells drf-spectacular about ``GatewayIdentityAuthentication``:
the client sends ``Authorization: Bearer <access_token>`` to the gateway, which checks it
and vouches for the member.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

ERROR_COMPONENT = "Error"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}

#: shared.errors.error_body as JSON Schema. More keys may come with a code (e.g. the
#: payment_id of a declined payment), so further properties are allowed.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error answer, everywhere: a code a client can act on, a message for people, "
    "and for input errors the fields at fault.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "Input errors only: the messages for each field at fault.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}

#: What each error status means in this API, and the codes it comes with.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "`validation_error` (the input is wrong; `fields` names each field at fault), "
    "or `bad_request` (a request the server cannot read)",
    401: "`not_authenticated`, `token_invalid`, `invalid_credentials` or `token_reused`",
    402: "`payment_declined`",
    403: "`permission_denied`",
    404: "`not_found`",
    409: "a conflict with the current state: `email_taken`, `sold_out`, `not_on_sale`, `limit_exceeded`, "
    "`illegal_transition` or `request_in_progress`",
    413: "`payload_too_large`: the body is over the limit (REQUEST_MAX_BODY_BYTES, 2.5 MiB by default)",
    414: "`uri_too_long`: the request line is over the web server's limit",
    415: "`unsupported_media_type`: the body is not `application/json`",
    422: "`idempotency_key_reused`: this Idempotency-Key was used for a different order",
    429: "`rate_limited`: try again after `Retry-After` seconds",
    431: "`headers_too_large`: the request headers are over the web server's limits",
    503: "`upstream_unavailable` (a service this request needs is down) or `overloaded` (the gateway "
    "sheds load instead of queueing it: nothing was done, try again after `Retry-After` seconds)",
    504: "`upstream_timeout`: a service this request needs did not answer in time",
}

_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}}


def error_response(status: int) -> dict[str, Any]:
    """The OpenAPI response object of one error status: the Error component, described."""
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": dict(ERROR_REF)}},
    }
    if status in (429, 503):  # rate_limited and overloaded always say it
        response["headers"] = dict(_RETRY_AFTER)
    return response


_View = TypeVar("_View", bound=Callable[..., Any])


def shop_errors(*statuses: int) -> Callable[[_View], _View]:
    """Declare the error statuses a view method answers besides the ones every operation has.

    ``@shop_errors(404, 409)`` on ``def put(...)``; each must be in ``ERROR_DESCRIPTIONS``.
    """
    unknown = set(statuses) - set(ERROR_DESCRIPTIONS)
    if unknown:
        raise ValueError(f"no description for error statuses {sorted(unknown)}")

    def mark(method: _View) -> _View:
        method.shop_error_statuses = tuple(statuses)  # type: ignore[attr-defined]
        return method

    return mark


class ShopAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, with every operation's error answers in the shop's shape."""

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        self.registry.register_on_missing(
            ResolvedComponent(
                name=ERROR_COMPONENT, type=ResolvedComponent.SCHEMA, object=ERROR_COMPONENT, schema=ERROR_SCHEMA
            )
        )
        for status in sorted(self._error_statuses()):
            responses.setdefault(str(status), error_response(status))
        return responses

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            # An id in the path is a positive bigint: the gateway routes digits only.
            if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                parameter["schema"] = {**parameter["schema"], "minimum": 1, "maximum": 2**63 - 1}
        return parameters

    def _error_statuses(self) -> set[int]:
        method = getattr(self.view, self.method.lower(), None)
        statuses = set(getattr(method, "shop_error_statuses", ()))
        if self._get_request_body() is not None:
            statuses |= {400, 415}  # the body is parsed and validated
        if any(parameter["in"] != "path" for parameter in self._get_parameters()):
            statuses.add(400)  # so are the query and header parameters
        return statuses


class GatewayIdentityScheme(OpenApiAuthenticationExtension):
    target_class = "shared.internal_auth.GatewayIdentityAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}

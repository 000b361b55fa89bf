"""One JSON error shape for every service: {"error": {"code", "message", "fields"?}}.

Services raise :class:`ShopError` subclasses (``SoldOut``, ``IllegalTransition``...);
the DRF exception handler and :class:`JsonErrorMiddleware` turn them, and everything
else, into that shape with the right status code. Nothing leaves as an HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)


#: On an error answer: for how many more seconds (decimal) any request with the same method,
#: path, query, content type and body gets this same answer, whoever sends it. The gateway may
#: repeat the answer itself meanwhile (gateway/answers.py); a request with an Idempotency-Key
#: is never answered that way.
SAME_ANSWER_HEADER = "X-Same-Answer-For"
#: On a 200 answer, with SAME_ANSWER_HEADER: ``<digest> <redis key> [<redis key> ...]``: the
#: answer stays the same only while those keys of the stack's Redis hold the values whose
#: digest (shared.redis.values_digest) is given. The gateway repeats a success only with it,
#: and reads the keys again before each repeat.
SAME_ANSWER_WHILE_HEADER = "X-Same-Answer-While"


class ShopError(Exception):
    """A domain error with a stable code a client can act on."""

    status_code = 400
    code = "bad_request"
    default_message = "The request could not be completed."
    #: headers the error answer carries besides the body (set on an instance)
    headers: dict[str, str] | None = None

    def __init__(self, message: str | None = None, *, fields: dict[str, list[str]] | None = None, **extra: Any):
        self.message = message or self.default_message
        self.fields = fields
        self.extra = extra
        super().__init__(self.message)


class ValidationFailed(ShopError):
    status_code, code, default_message = 400, "validation_error", "Some fields are invalid."


class EmailNotVerified(ShopError):
    status_code, code, default_message = 400, "email_not_verified", "Verify this e-mail address with a code first."


class NotAuthenticated(ShopError):
    status_code, code, default_message = 401, "not_authenticated", "Authentication credentials were not provided."


class TokenInvalid(ShopError):
    status_code, code, default_message = 401, "token_invalid", "The token is invalid or expired."


class InvalidCredentials(ShopError):
    status_code, code, default_message = 401, "invalid_credentials", "E-mail or password is wrong."


class TokenReused(ShopError):
    status_code, code, default_message = (
        401,
        "token_reused",
        "This refresh token was already used; the session is ended.",
    )


class PermissionDenied(ShopError):
    status_code, code, default_message = 403, "permission_denied", "You may not do this."


class NotFound(ShopError):
    status_code, code, default_message = 404, "not_found", "Not found."


class Conflict(ShopError):
    status_code, code, default_message = 409, "conflict", "The request conflicts with the current state."


class EmailTaken(Conflict):
    code, default_message = "email_taken", "This e-mail is already registered."


class SoldOut(Conflict):
    code, default_message = "sold_out", "Sold out."


class NotOnSale(Conflict):
    code, default_message = "not_on_sale", "This item is not on sale yet."


class LimitExceeded(Conflict):
    code, default_message = "limit_exceeded", "This would exceed the purchase limit per member."


class IllegalTransition(Conflict):
    code, default_message = "illegal_transition", "That is not possible in the current state."


class RequestInProgress(Conflict):
    code = "request_in_progress"
    default_message = "An order with this Idempotency-Key is still being placed; retry in a moment."


class IdempotencyKeyReused(ShopError):
    status_code, code = 422, "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used for a different order."


class PaymentDeclined(ShopError):
    status_code, code, default_message = 402, "payment_declined", "The payment was declined."


class PayloadTooLarge(ShopError):
    status_code, code, default_message = 413, "payload_too_large", "The request body is too large."


class RateLimited(ShopError):
    status_code, code, default_message = 429, "rate_limited", "Too many requests; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int = 60, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = max(1, int(retry_after))


class UpstreamUnavailable(ShopError):
    status_code, code, default_message = 503, "upstream_unavailable", "A service this request needs is unavailable."


class UpstreamTimeout(ShopError):
    status_code, code, default_message = 504, "upstream_timeout", "A service this request needs did not answer in time."


def error_body(code: str, message: str, fields: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    return {"error": error}


def _flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error dicts -> {"lines.0.quantity": ["..."]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" and not prefix else f"{prefix}{key}"
            out.update(_flatten_fields(value, f"{name}."))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix.rstrip(".") or "non_field_errors"] = [str(item) for item in detail]
        else:
            for i, item in enumerate(detail):
                if item:
                    out.update(_flatten_fields(item, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".") or "non_field_errors"] = [str(detail)]
    return out


def shop_error_response(exc: ShopError) -> Response:
    headers = dict(exc.headers or {})
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return Response(
        error_body(exc.code, exc.message, exc.fields, **exc.extra), status=exc.status_code, headers=headers or None
    )


_DRF_CODES = {
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "token_invalid",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.ParseError: "validation_error",
    drf_exceptions.Throttled: "rate_limited",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error a view raises leaves in the one shape."""
    if isinstance(exc, ShopError):
        return shop_error_response(exc)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if isinstance(exc, drf_exceptions.ValidationError):
        return Response(
            error_body("validation_error", "Some fields are invalid.", _flatten_fields(exc.detail)),
            status=400,
        )
    if isinstance(exc, drf_exceptions.APIException):
        code = next((c for klass, c in _DRF_CODES.items() if isinstance(exc, klass)), "error")
        headers = {}
        if isinstance(exc, drf_exceptions.Throttled) and exc.wait:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        # 401 must not be downgraded to 403 by DRF: our authentication class has a header.
        status = exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return Response(error_body(code, str(message)), status=status, headers=headers or None)
    return None  # unexpected: JsonErrorMiddleware logs it and answers 500 JSON


class JsonErrorMiddleware:
    """Turns errors that escape views (404 from URL resolution, crashes) into JSON."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 404 and not _is_json(response) and not _is_admin(request):
            return JsonResponse(error_body("not_found", "Not found."), status=404)
        return response

    def process_exception(self, request, exception):
        if _is_admin(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            exception = PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
        if isinstance(exception, ShopError):
            resp = JsonResponse(
                error_body(exception.code, exception.message, exception.fields), status=exception.status_code
            )
            if isinstance(exception, RateLimited):
                resp["Retry-After"] = str(exception.retry_after)
            return resp
        if isinstance(exception, Http404):
            return JsonResponse(error_body("not_found", "Not found."), status=404)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(error_body("internal_error", "Something went wrong on our side."), status=500)


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _is_admin(request) -> bool:
    return request.path.startswith("/admin")

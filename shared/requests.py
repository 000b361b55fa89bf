"""Request ids: one id follows a request through every hop and into every log line."""

from __future__ import annotations

import contextvars
import logging
import uuid

REQUEST_ID_HEADER = "X-Request-Id"
_META_KEY = "HTTP_X_REQUEST_ID"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def current_request_id() -> str:
    return request_id_var.get()


def _clean(value: str | None) -> str | None:
    # A client may send its own id, but never a long or odd one into our logs.
    if value and len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
        return value
    return None


class RequestIdMiddleware:
    """Takes the incoming X-Request-Id (or makes one), exposes it to logging, echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = _clean(request.META.get(_META_KEY)) or uuid.uuid4().hex
        request.request_id = rid
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = rid
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id_var.get()
        if rid == "-":
            # django.request writes its line after the middleware chain has returned (and the
            # context variable is reset), but it passes the request along with the record.
            rid = getattr(getattr(record, "request", None), "request_id", "-")
        record.request_id = rid
        return True

"""Request ids reach every log line, including the ones Django writes after the middleware."""

import logging

from django.http import HttpResponse
from django.test import RequestFactory

from shared.requests import REQUEST_ID_HEADER, RequestIdLogFilter, RequestIdMiddleware


def _record(**extra) -> logging.LogRecord:
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error", (), None)
    record.__dict__.update(extra)
    return record


def test_the_middleware_sets_the_id_for_log_lines_inside_the_request_and_echoes_it():
    seen = []

    def view(request):
        record = _record()
        RequestIdLogFilter().filter(record)
        seen.append(record.request_id)
        return HttpResponse()

    request = RequestFactory().get("/", HTTP_X_REQUEST_ID="abc-123")
    response = RequestIdMiddleware(view)(request)
    assert seen == ["abc-123"] and response[REQUEST_ID_HEADER] == "abc-123"
    # outside the request the context variable is back to "no request"
    outside = _record()
    RequestIdLogFilter().filter(outside)
    assert outside.request_id == "-"


def test_a_line_written_after_the_middleware_takes_the_id_from_its_request():
    request = RequestFactory().get("/", HTTP_X_REQUEST_ID="abc-123")
    RequestIdMiddleware(lambda r: HttpResponse(status=500))(request)
    record = _record(request=request)  # what django.request's log_response passes
    RequestIdLogFilter().filter(record)
    assert record.request_id == "abc-123"


def test_an_odd_client_id_is_replaced_not_logged():
    request = RequestFactory().get("/", HTTP_X_REQUEST_ID="x" * 65 + "\n")
    response = RequestIdMiddleware(lambda r: HttpResponse())(request)
    assert response[REQUEST_ID_HEADER] != request.META["HTTP_X_REQUEST_ID"]
    assert len(response[REQUEST_ID_HEADER]) == 32

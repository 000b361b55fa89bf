"""The web server's own refusals, in the shop's error shape."""

from __future__ import annotations

import json

from shared import gunicorn_conf


def _parse(raw: bytes) -> tuple[str, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    assert int(headers["content-length"]) == len(body)
    return status, headers, json.loads(body)


def test_an_overlong_request_line_is_a_json_414_naming_the_limit():
    status, headers, body = _parse(gunicorn_conf.json_error(414, "URI Too Long", "Request Line is too large"))
    assert status == "HTTP/1.1 414 URI Too Long" and headers["content-type"] == "application/json"
    assert body["error"]["code"] == "uri_too_long"
    assert str(gunicorn_conf.limit_request_line) in body["error"]["message"]


def test_other_refusals_keep_their_status_and_say_why():
    status, _, body = _parse(gunicorn_conf.json_error(400, "Bad Request", "Invalid HTTP Version 'HTTP/9'"))
    assert status == "HTTP/1.1 400 Bad Request"
    assert body == {"error": {"code": "bad_request", "message": "Invalid HTTP Version 'HTTP/9'"}}

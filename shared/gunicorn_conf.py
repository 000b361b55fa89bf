"""gunicorn's configuration for every service's web server: ``gunicorn -c python:shared.gunicorn_conf``.

gunicorn refuses a request it cannot read (a request line or headers over the limits
below, a line that is not HTTP) before Django sees it, and answers with an HTML page.
The shop answers JSON everywhere, so those refusals are written in the shop's error
shape instead, with the same status codes.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util

#: The longest request line (method, path and query, version), in bytes: 414 beyond it.
limit_request_line = 4094
#: The most header fields in a request, and the longest field, in bytes: 431 beyond them.
limit_request_fields = 100
limit_request_field_size = 8190

_CODES = {
    400: "bad_request",
    403: "permission_denied",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}
_MESSAGES = {
    414: f"The request line is longer than {limit_request_line} bytes.",
    431: (
        f"The request headers are over the limit: at most {limit_request_fields} fields "
        f"of at most {limit_request_field_size} bytes each."
    ),
}


def json_error(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP answer gunicorn sends for a request it refused, as JSON."""
    error = {"code": _CODES.get(status, "bad_request"), "message": _MESSAGES.get(status) or message or reason}
    body = json.dumps({"error": error}).encode()  # the shape of shared.errors.error_body
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, json_error(status_int, reason, mesg))


def on_starting(server) -> None:
    # Every worker class answers a refused request through util.write_error; the workers are
    # forked from this process after this hook, so each writes JSON.
    util.write_error = _write_json_error

"""The HTTP/1.1 exchange under every hop: how answers are framed, and what is not sent.

A raw socket server plays the service, so each test says byte for byte what comes back.
"""

from __future__ import annotations

import socket
import threading

import pytest

from shared import keepalive


class CannedService:
    """Answers the n-th request it reads (over any connection) with ``answers[n]``.

    An answer may be a callable of the connection, for one that misbehaves mid-answer.
    Counts the connections it accepted and keeps every request's bytes.
    """

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn):
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                self.requests.append(head + b"\r\n\r\n" + body)
                answer = self.answers[len(self.requests) - 1]
                if callable(answer):
                    answer(conn)
                    return
                conn.sendall(answer)

    def close(self):
        self.listener.close()


@pytest.fixture
def canned():
    """``canned(answers)``: a :class:`CannedService`, closed when the test ends."""
    made: list[CannedService] = []

    def make(answers) -> CannedService:
        made.append(CannedService(answers))
        return made[-1]

    yield make
    for service in made:
        service.close()


def _pool(service: CannedService) -> keepalive.Pool:
    return keepalive.Pool(f"http://127.0.0.1:{service.port}", maxsize=2, idle_reuse_seconds=60)


def _get(pool: keepalive.Pool, path: str = "/x", method: str = "GET", **kw) -> keepalive.Answer:
    return pool.request(method, path, headers=kw.pop("headers", {}), connect_timeout=1.0, read_timeout=2.0, **kw)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_a_chunked_answer_is_read_whole_and_its_connection_kept(canned):
    svc = canned(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
            b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
            OK,
        ]
    )
    pool = _pool(svc)
    first = _get(pool)
    assert (first.status, first.data, first.headers["x-a"]) == (200, b"hello world", "1")
    assert _get(pool).data == b"ok"
    assert svc.connections == 1


def test_an_answer_with_no_length_ends_with_its_connection_which_is_not_used_again(canned):
    def until_close(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        conn.shutdown(socket.SHUT_WR)

    svc = canned([until_close, OK])
    pool = _pool(svc)
    assert _get(pool).data == b"all of it"
    assert _get(pool).data == b"ok"
    assert svc.connections == 2


@pytest.mark.parametrize(
    "close_header",
    [b"Connection: close\r\n", b"connection: Close\r\n"],
)
def test_an_answer_that_says_close_ends_its_connection(close_header, canned):
    svc = canned([b"HTTP/1.1 200 OK\r\n" + close_header + b"Content-Length: 2\r\n\r\nok", OK])
    pool = _pool(svc)
    assert _get(pool).data == b"ok"
    assert _get(pool).data == b"ok"
    assert svc.connections == 2


def test_an_http_1_0_answer_keeps_its_connection_only_when_it_says_keep_alive(canned):
    svc = canned(
        [
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\na",
            b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb",
            OK,
        ]
    )
    pool = _pool(svc)
    assert [_get(pool).data for _ in range(3)] == [b"a", b"b", b"ok"]
    assert svc.connections == 2


def test_no_content_and_head_answers_have_no_body_and_keep_the_connection(canned):
    svc = canned(
        [
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",  # a HEAD answer names the GET's length
            OK,
        ]
    )
    pool = _pool(svc)
    assert (_get(pool).status, _get(pool, method="HEAD").data, _get(pool).data) == (204, b"", b"ok")
    assert svc.connections == 1


def test_a_continue_before_the_answer_is_passed_over(canned):
    svc = canned([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew"])
    pool = _pool(svc)
    answer = _get(pool, method="POST", body=b"{}")
    assert (answer.status, answer.data) == (201, b"new")


def _short_body(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd")
    conn.close()


def _not_http(conn):
    conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")


def _cut_in_headers(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-")
    conn.close()


def _bad_chunk(conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")


def _nothing(conn):
    conn.close()


@pytest.mark.parametrize("misbehave", [_short_body, _not_http, _cut_in_headers, _bad_chunk, _nothing])
def test_an_answer_that_is_cut_short_or_not_http_is_dropped_and_its_connection_closed(misbehave, canned):
    svc = canned([misbehave, OK])
    pool = _pool(svc)
    with pytest.raises(keepalive.Dropped):
        _get(pool, method="POST", body=b"{}")
    assert _get(pool).data == b"ok"  # on a new connection: the broken one was not pooled
    assert svc.connections == 2


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/x", {"X-Request-ID": "a\r\nX-Member-ID: 1"}),
        ("/x", {"X-Request-ID": "a\nb"}),
        ("/x", {"X-Request-ID": "a\x00"}),
        ("/x HTTP/1.1\r\nX-Member-ID: 1\r\n\r\nGET /y", {}),
        ("/x\x7f", {}),
        ("/caf\u00e9", {}),
    ],
)
def test_a_request_that_could_smuggle_a_header_is_refused_before_anything_is_sent(path, headers, canned):
    svc = canned([OK])
    pool = _pool(svc)
    with pytest.raises(ValueError):
        _get(pool, path, headers=headers)
    assert (svc.connections, svc.requests) == (0, [])


def test_a_request_names_its_host_and_length_once_and_its_headers_as_given(canned):
    svc = canned([OK, OK, OK])
    pool = _pool(svc)
    _get(pool, method="POST", headers={"X-A": "1"}, body=b"{}")
    _get(pool, method="PUT", headers={"Host": "shop.example"})
    _get(pool, headers={"X-B": 2})  # a number goes as its digits
    post, put, get = (r.split(b"\r\n\r\n")[0].split(b"\r\n") for r in svc.requests)
    assert post == [b"POST /x HTTP/1.1", f"Host: 127.0.0.1:{svc.port}".encode(), b"X-A: 1", b"Content-Length: 2"]
    assert put == [b"PUT /x HTTP/1.1", b"Host: shop.example", b"Content-Length: 0"]
    assert get == [b"GET /x HTTP/1.1", f"Host: 127.0.0.1:{svc.port}".encode(), b"X-B: 2"]
    assert svc.requests[0].endswith(b"\r\n\r\n{}")


def test_headers_past_the_limit_are_not_read_on_and_on(canned):
    svc = canned([b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 200 + b"Content-Length: 0\r\n\r\n"])
    pool = _pool(svc)
    with pytest.raises(keepalive.Dropped):
        _get(pool)

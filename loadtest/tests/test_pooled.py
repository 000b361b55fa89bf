"""The load generator's check of an idle kept-alive connection, past descriptor 1023 too."""

from __future__ import annotations

import resource
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))

import gevent.socket  # noqa: E402
import pooled  # noqa: E402
from geventhttpclient.connectionpool import ConnectionPool  # noqa: E402


@pytest.fixture
def high_pair():
    """A connected socket pair whose descriptors are past 1023 (select's limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"at most {hard} open files here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200) if soft != resource.RLIM_INFINITY else soft, hard))
    filler = [socket.socket() for _ in range(1030)]
    a, b = socket.socketpair()
    try:
        assert a.fileno() >= 1024
        yield a, b
    finally:
        for s in (*filler, a, b):
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_idle_connection_past_descriptor_1023_is_kept(high_pair):
    a, _ = high_pair
    assert pooled.socket_alive(None, a)


def test_a_connection_the_server_closed_or_wrote_to_unasked_is_not_reused(high_pair):
    a, b = high_pair
    b.send(b"HTTP/1.1 200 OK\r\n")  # bytes nobody asked for
    assert not pooled.socket_alive(None, a)
    a.recv(100)
    assert pooled.socket_alive(None, a)
    b.close()  # the server's FIN
    assert not pooled.socket_alive(None, a)


def test_a_closed_socket_is_not_reused():
    a, b = socket.socketpair()
    a.close()
    b.close()
    assert not pooled.socket_alive(None, a) and not pooled.socket_alive(None, None)


def test_installed_the_pool_keeps_connections_past_descriptor_1023(high_pair, monkeypatch):
    monkeypatch.setattr(ConnectionPool, "_is_socket_alive", ConnectionPool._is_socket_alive)  # undone after
    pooled.install()
    pool = ConnectionPool.__new__(ConnectionPool)
    a, _ = high_pair
    assert pool._is_socket_alive(a)


def test_installed_the_pool_looks_its_address_up_once(monkeypatch):
    monkeypatch.setattr(ConnectionPool, "_is_socket_alive", ConnectionPool._is_socket_alive)  # undone after
    monkeypatch.setattr(ConnectionPool, "_resolve", ConnectionPool._resolve)
    monkeypatch.setattr(pooled, "_resolved", {}, raising=False)
    lookups = []
    real = gevent.socket.getaddrinfo

    def counted(*args, **kwargs):
        lookups.append(args[:2])
        return real(*args, **kwargs)

    monkeypatch.setattr(gevent.socket, "getaddrinfo", counted)
    pooled.install()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    pool = ConnectionPool("127.0.0.1", port, "127.0.0.1", port)
    try:
        first, second = pool._create_socket(), pool._create_socket()
        assert first.getpeername() == second.getpeername() == ("127.0.0.1", port)
        assert lookups == [("127.0.0.1", port)]  # the second connection asked no one
    finally:
        for s in (first, second, server):
            s.close()


def test_buyers_connecting_at_the_same_moment_share_one_lookup(monkeypatch):
    # A drop's buyers all connect at its opening: each asked gevent's resolver thread pool
    # before the first answer came back, 2,400 lookups queued behind 10 threads.
    import gevent

    monkeypatch.setattr(pooled, "_resolved", {}, raising=False)
    lookups = []

    def slow_lookup(pool):
        lookups.append(pool._connection_host)
        gevent.sleep(0.05)  # answered in a thread: the loop runs the other buyers meanwhile
        return [("the", "address")]

    monkeypatch.setattr(pooled, "_resolve_each_time", slow_lookup)
    pools = [ConnectionPool("127.0.0.1", 8000, "127.0.0.1", 8000) for _ in range(50)]
    buyers = [gevent.spawn(pooled.resolve_once, pool) for pool in pools]
    gevent.joinall(buyers, timeout=5, raise_error=True)
    assert lookups == ["127.0.0.1"]
    assert [b.value for b in buyers] == [[("the", "address")]] * 50


def test_a_failed_lookup_fails_its_waiters_and_the_next_connection_asks_again(monkeypatch):
    import gevent

    monkeypatch.setattr(pooled, "_resolved", {}, raising=False)
    answers = iter([OSError("no such host"), [("the", "address")]])

    def lookup(pool):
        gevent.sleep(0.05)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(pooled, "_resolve_each_time", lookup)
    pool = ConnectionPool("127.0.0.1", 8000, "127.0.0.1", 8000)
    buyers = [gevent.spawn(pooled.resolve_once, pool) for _ in range(3)]
    gevent.joinall(buyers, timeout=5)
    assert all(isinstance(b.exception, OSError) for b in buyers)  # none waits forever
    assert pooled.resolve_once(pool) == [("the", "address")]  # a failure is not remembered

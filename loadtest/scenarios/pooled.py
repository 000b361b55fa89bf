"""Kept-alive connections that stay kept, and one address lookup: geventhttpclient's pool, as a browser uses it.

Before it reuses a pooled connection, geventhttpclient (2.6.1, the newest) asks whether the
idle socket is still good with ``select.select`` and a zero timeout: readable while idle
means the server closed it, or sent bytes nobody asked for. ``select`` cannot take a file
descriptor of 1024 or more (``ValueError``), which the check counts as a dead connection.
A drop's 2,000 buyers in one locust process hold about as many sockets, so every buyer
whose socket got a descriptor past 1023 closed it and connected again before its next click:
about 1,600 connections of a fairness drop with the gateway as it is (its refusals close their
connection anyway, which frees descriptors), 17,000 of 19,500 when the gateway's refusals kept
their connections (docs/performance.md, "Sixteenth round"). A real buyer's browser keeps its
connection; the gateway and the load generator paid for the others.

:func:`install` gives the pool the same check with ``poll``, which has no such limit.

It also has the pool look its address up once per process. The pool resolves the host anew
for every connection it opens, and gevent does that in a thread pool, whose answer comes back
to the loop behind everything else that is ready. A refusal in the gateway's main thread
closes its connection, so a buyer's next click connects again. Waiting in that pool, such
clicks reached the gateway p99 181-260 ms (won) and 336-2,390 ms (sold out) after they were
sent, in three fairness drops; with the address looked up once, 61-201 and 59-129 ms
(docs/performance.md, "Seventeenth round"). That wait paced the load generator's own
reconnections, which a browser with the address cached does not do. Load tests go to
127.0.0.1 only, whose address does not change during a run. Buyers that connect while the
first lookup is under way wait for its answer rather than ask too: a drop's buyers all
connect at its opening, and each had asked before the first answer came back, some 2,400
lookups behind gevent's ten resolver threads (docs/performance.md, "Nineteenth round").
"""

from __future__ import annotations

import select
from typing import Any

from gevent import monkey
from gevent.event import AsyncResult
from geventhttpclient.connectionpool import ConnectionPool

#: the system's poll, not gevent's (which would wait on the hub): a zero-timeout look only
_poll = monkey.get_original("select", "poll")


def socket_alive(pool: ConnectionPool, sock: Any) -> bool:
    """Whether an idle pooled socket may carry the next request: open, and nothing to read."""
    if sock is None:
        return False
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = _poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


#: (host, port, no IPv6) -> the lookup's answer, or the lookup under way
_resolved: dict[tuple[str, int, bool], AsyncResult] = {}
_resolve_each_time = ConnectionPool._resolve


def resolve_once(pool: ConnectionPool) -> list:
    """The pool's ``getaddrinfo`` answer for its host, looked up once per process: on the first
    connection of any pool; the connections opened meanwhile wait for that answer. A failed
    lookup fails them all and is not remembered: the next connection asks again."""
    key = (pool._connection_host, pool._connection_port, pool.disable_ipv6)
    found = _resolved.get(key)
    if found is not None:
        return found.get()
    found = _resolved[key] = AsyncResult()
    try:
        answer = _resolve_each_time(pool)
    except BaseException as e:  # noqa: BLE001 - its waiters must hear of any end, a killed greenlet's too
        del _resolved[key]
        found.set_exception(e)
        raise
    found.set(answer)
    return answer


def install() -> None:
    ConnectionPool._is_socket_alive = socket_alive
    ConnectionPool._resolve = resolve_once

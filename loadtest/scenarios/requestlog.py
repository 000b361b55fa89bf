"""Every request of a run, one line each: when it was sent, how long it took, what came back.

Locust keeps percentiles per request name, not single requests, so it cannot say which
clicks made a tail, or when they were sent. ``loadtest ... --request-log`` has each locust
process write ``requests-<pid>.tsv`` into the run's folder, a line per request:

    sent (wall clock, s)  time (ms)  status (0: no answer)  name  member

for instance every won answer over a second of a drop, by when its click was sent
(docs/performance.md, "Nineteenth round"), or a member's clicks before it won (the member
is the request's ``context["member"]``, as the drop's buyers name it; empty otherwise). A
measurement: the line costs the load generator a write per request, so it is off unless
asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any


def line(start_time: float, response_time: float, response: Any, name: str, member: Any = "") -> str:
    """One request's line; ``response`` is locust's (None or without a status: 0)."""
    status = getattr(response, "status_code", None) or 0
    return f"{start_time:.4f}\t{response_time:.1f}\t{status}\t{name}\t{member}\n"


class RequestLog:
    """This process's file, written a line at a time (so nothing is lost when the run ends)."""

    def __init__(self, folder: Path, pid: int) -> None:
        self.path = folder / f"requests-{pid}.tsv"
        self._file: IO[str] = open(self.path, "a", buffering=1)  # noqa: SIM115 - open for the run

    def record(
        self,
        *,
        start_time: float,
        response_time: float,
        name: str,
        response: Any = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        """A listener for locust's ``events.request``."""
        member = (context or {}).get("member", "")
        self._file.write(line(start_time, response_time, response, name, member))

    def close(self) -> None:
        self._file.close()

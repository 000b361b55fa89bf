"""CPU time of the stack's processes, read from ``/proc``, grouped by what they are.

A process's ``/proc/<pid>/stat`` holds the CPU it used (``utime`` + ``stime``, all its
threads) and what its reaped children used (``cutime`` + ``cstime``), in clock ticks.
A group's CPU at one moment is the sum of all four over its live processes: a child
that ends between two snapshots then still counts, through its parent's ``cutime``,
and a process that starts between them counts from zero. The CPU a group used between
two snapshots is the difference of the sums, as long as the group's root process is
the same one in both (same pid and start time); a restarted root makes the figure
meaningless, and the difference says so.

Groups: every program supervisord runs (with its children: gunicorn workers, Celery's
beat and pool), supervisord itself, the PostgreSQL backends serving the stack's
databases (one group per database; connections of other databases and the server's
own processes are kept apart, because other work on the machine uses them too), and
the Redis server.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: groups that are not the stack's alone (shared with other work on the machine): shown, not added up
SHARED_GROUPS = ("postgres server (shared)",)


@dataclass(frozen=True)
class ProcStat:
    pid: int
    comm: str
    state: str
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int
    starttime: int

    @property
    def own_ticks(self) -> int:
        return self.utime + self.stime

    @property
    def ticks(self) -> int:
        """Its own CPU and that of the children it has reaped."""
        return self.utime + self.stime + self.cutime + self.cstime


def parse_stat(text: str) -> ProcStat:
    """One ``/proc/<pid>/stat`` line.

    The second field is the command name in parentheses, and the name itself may hold
    spaces and parentheses (``(my (odd) name)``): it ends at the *last* ``)``.
    """
    open_at = text.index("(")
    close_at = text.rindex(")")
    pid = int(text[:open_at].strip())
    comm = text[open_at + 1 : close_at]
    rest = text[close_at + 1 :].split()
    # rest[0] is field 3 (state); field n is rest[n - 3]
    return ProcStat(
        pid=pid,
        comm=comm,
        state=rest[0],
        ppid=int(rest[1]),
        utime=int(rest[11]),
        stime=int(rest[12]),
        cutime=int(rest[13]),
        cstime=int(rest[14]),
        starttime=int(rest[19]),
    )


def parse_cpu_line(text: str) -> tuple[int, int]:
    """(busy ticks, all ticks) of the whole machine from ``/proc/stat``'s first line."""
    first = text.splitlines()[0].split()
    assert first[0] == "cpu", first
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    # guest and guest_nice (fields 9, 10) are already counted in user and nice
    total = sum(values[:8])
    return total - idle, total


# ----------------------------------------------------------------------------- reading /proc


class ProcFS:
    """A ``/proc`` to read (another root in tests)."""

    def __init__(self, root: str | Path = "/proc"):
        self.root = Path(root)

    def pids(self) -> list[int]:
        return [int(p.name) for p in self.root.iterdir() if p.name.isdigit()]

    def stat(self, pid: int) -> ProcStat | None:
        try:
            return parse_stat((self.root / str(pid) / "stat").read_text())
        except (OSError, ValueError, IndexError):
            return None  # gone meanwhile

    def cmdline(self, pid: int) -> list[str]:
        try:
            raw = (self.root / str(pid) / "cmdline").read_bytes()
        except OSError:
            return []
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a]

    def cwd(self, pid: int) -> str:
        try:
            return os.readlink(self.root / str(pid) / "cwd")
        except OSError:
            return ""

    def machine(self) -> tuple[int, int]:
        return parse_cpu_line((self.root / "stat").read_text())


# ----------------------------------------------------------------------------- which process is what


@dataclass
class ProgramSpec:
    """A supervisor program: its group name, its command and the folder it runs in."""

    group: str
    argv: list[str]
    directory: str


def group_name(program: str) -> str:
    """``order`` -> ``order web``, ``order-worker`` -> ``order celery``, ``kafka`` -> ``broker``."""
    if program == "kafka":
        return "broker"
    if program == "gateway":
        return "gateway"
    if program.endswith("-worker"):
        return program[: -len("-worker")] + " celery"
    if program.endswith("-consumer"):
        return program[: -len("-consumer")] + " consumer"
    return program + " web"


def program_specs(programs: Iterable[tuple[str, str, str]]) -> list[ProgramSpec]:
    """From (program name, command, directory) of the supervisor configuration."""
    return [ProgramSpec(group_name(name), shlex.split(command), directory) for name, command, directory in programs]


def match_program(cmdline: list[str], cwd: str, specs: list[ProgramSpec]) -> ProgramSpec | None:
    """The program a child of supervisord runs.

    The running command line ends with the configured one (a script's interpreter comes
    first: ``python .../gunicorn ...``); programs with the same command (every service's
    ``manage.py consume``) are told apart by the folder they run in.
    """
    candidates = [s for s in specs if s.argv and len(cmdline) >= len(s.argv) and cmdline[-len(s.argv) :] == s.argv]
    if len(candidates) > 1:
        in_dir = [s for s in candidates if s.directory and os.path.realpath(s.directory) == os.path.realpath(cwd)]
        candidates = in_dir or candidates
    return candidates[0] if candidates else None


_PG_BACKEND = re.compile(r"^postgres: (?:[^:]+: )?(\S+) (\S+) ")


def postgres_database(cmdline: list[str]) -> str | None:
    """The database a PostgreSQL backend serves, from its process title, or None for the server's own processes.

    ``postgres: 15/main: postgres shop_order 127.0.0.1(40028) idle`` -> ``shop_order``;
    ``postgres: 15/main: checkpointer`` -> None.
    """
    title = " ".join(cmdline)
    m = _PG_BACKEND.match(title + " ")
    if not m or "(" not in title:
        return None
    return m.group(2)


def descendants(root: int, children: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


@dataclass
class Snapshot:
    """CPU ticks per group at one moment, and the identity of each group's root process."""

    ticks: dict[str, int] = field(default_factory=dict)
    roots: dict[str, tuple[int, int]] = field(default_factory=dict)  # group -> (pid, starttime)
    pids: dict[str, set[int]] = field(default_factory=dict)
    machine_busy: int = 0
    machine_total: int = 0


@dataclass
class StackProcesses:
    """How to find the stack's processes in ``/proc``; ``snapshot()`` reads their CPU."""

    supervisord_pid: int
    specs: list[ProgramSpec]
    databases: dict[str, str]  # database name -> group label
    redis_port: int = 6379
    exclude_pids: set[int] = field(default_factory=set)  # e.g. our own PostgreSQL connections
    proc: ProcFS = field(default_factory=ProcFS)

    def snapshot(self) -> Snapshot:
        procs = {}
        children: dict[int, list[int]] = {}
        for pid in self.proc.pids():
            st = self.proc.stat(pid)
            if st is None:
                continue
            procs[pid] = st
            children.setdefault(st.ppid, []).append(pid)
        snap = Snapshot()
        snap.machine_busy, snap.machine_total = self.proc.machine()

        def add(group: str, pids: Iterable[int], root: int | None = None) -> None:
            pids = [p for p in pids if p in procs and p not in self.exclude_pids]
            snap.ticks[group] = snap.ticks.get(group, 0) + sum(procs[p].ticks for p in pids)
            snap.pids.setdefault(group, set()).update(pids)
            if root is not None and root in procs:
                snap.roots[group] = (root, procs[root].starttime)

        if self.supervisord_pid in procs:
            # supervisord's own CPU (it also copies every program's output into the logs);
            # its reaped children are a restarted program's, not its own: own ticks only
            st = procs[self.supervisord_pid]
            snap.ticks["supervisord"] = st.own_ticks
            snap.roots["supervisord"] = (st.pid, st.starttime)
            snap.pids["supervisord"] = {st.pid}
        for child in children.get(self.supervisord_pid, []):
            spec = match_program(self.proc.cmdline(child), self.proc.cwd(child), self.specs)
            group = spec.group if spec else f"unknown program (pid {child})"
            add(group, descendants(child, children), root=child)
        for pid, st in procs.items():
            if st.comm == "redis-server" and f":{self.redis_port}" in " ".join(self.proc.cmdline(pid)):
                add("redis", [pid], root=pid)
        pg = ("postgres", "postmaster")
        postmaster = next(
            (
                pid
                for pid, st in procs.items()
                if st.comm in pg and (st.ppid not in procs or procs[st.ppid].comm not in pg)
            ),
            None,
        )
        if postmaster is not None:
            shared = [postmaster]
            for pid in children.get(postmaster, []):
                db = postgres_database(self.proc.cmdline(pid))
                if db in self.databases:
                    add(self.databases[db], [pid])
                elif pid not in self.exclude_pids:
                    shared.append(pid)
            add(SHARED_GROUPS[0], shared, root=postmaster)
        return snap


# ----------------------------------------------------------------------------- arithmetic


@dataclass
class Usage:
    """CPU seconds per group between two snapshots."""

    seconds: dict[str, float]
    wall_seconds: float
    machine_busy_seconds: float
    restarted: list[str]
    ended_connections: dict[str, int]

    def total(self, *, include_shared: bool = False) -> float:
        return sum(v for k, v in self.seconds.items() if include_shared or k not in SHARED_GROUPS)


def usage(before: Snapshot, after: Snapshot, wall_seconds: float, *, cpus: int | None = None) -> Usage:
    """What each group used between ``before`` and ``after``.

    A group whose root process changed (restarted) is listed in ``restarted`` and its
    figure is left out; PostgreSQL connections of a stack database that ended between the
    snapshots are counted in ``ended_connections`` (their CPU went to the server's
    ``cutime``, which cannot be told apart from other databases').
    """
    seconds: dict[str, float] = {}
    restarted = []
    for group in sorted(set(before.ticks) | set(after.ticks)):
        b_root, a_root = before.roots.get(group), after.roots.get(group)
        if b_root is not None and a_root is not None and b_root != a_root:
            restarted.append(group)
            continue
        if group in before.roots and group not in after.roots:
            restarted.append(group)  # gone
            continue
        seconds[group] = (after.ticks.get(group, 0) - before.ticks.get(group, 0)) / CLK_TCK
    ended = {
        g: len(before.pids[g] - after.pids.get(g, set()))
        for g in before.pids
        if g.startswith("postgres ") and g not in SHARED_GROUPS and before.pids[g] - after.pids.get(g, set())
    }
    machine_ticks = after.machine_busy - before.machine_busy
    return Usage(
        seconds=seconds,
        wall_seconds=wall_seconds,
        machine_busy_seconds=machine_ticks / CLK_TCK,
        restarted=restarted,
        ended_connections=ended,
    )


def per_unit_ms(u: Usage, units: int) -> dict[str, float]:
    """Milliseconds of CPU per unit (request, order, payment) per group."""
    if units <= 0:
        return {}
    return {g: s * 1000.0 / units for g, s in u.seconds.items()}


def percent_of_core(u: Usage) -> dict[str, float]:
    """CPU per group as % of one core over the wall time (the idle figure)."""
    if u.wall_seconds <= 0:
        return {}
    return {g: 100.0 * s / u.wall_seconds for g, s in u.seconds.items()}


def idle_share_ms(idle_core_percent: dict[str, float], wall_seconds: float, units: int) -> dict[str, float]:
    """What the idle stack alone would have used in the window, per unit (ms): the part of a figure not due to the load."""
    if units <= 0:
        return {}
    return {g: pct / 100.0 * wall_seconds * 1000.0 / units for g, pct in idle_core_percent.items()}

"""supervisor, driven from here: its configuration file written and read back, and the
running ``supervisord`` asked through its XML-RPC interface (never by parsing
``supervisorctl``'s text).

The file is written with :mod:`configparser`. supervisor expands ``%(name)s`` in its
values, so every ``%`` is doubled; an environment value is quoted the way supervisor's
own parser reads it back (``supervisor.datatypes.dict_of_key_value_pairs``).
"""

from __future__ import annotations

import configparser
import io
import re
import shlex
import time
import xmlrpc.client
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: what supervisor's parser takes for the start of a comment inside a value
_INLINE_COMMENT = re.compile(r"\s[;#]")
#: states in which a program holds (or is about to hold) a process
ACTIVE_STATES = ("RUNNING", "STARTING", "BACKOFF")


@dataclass
class Program:
    """One ``[program:NAME]`` section: what supervisord runs, where, and with what environment."""

    name: str
    argv: list[str]
    directory: Path | str
    env: dict[str, str] = field(default_factory=dict)
    priority: int = 10
    #: seconds a stopping program gets before it is killed
    stopwait: int = 10

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


class ConfigValueError(ValueError):
    """A value supervisor's configuration cannot carry unchanged."""


def _quoted(key: str, value: str) -> str:
    # supervisor splits the environment line with a non-POSIX shlex: a quoted value runs to
    # the next quote of the same kind, with no escapes, and quote characters at either end
    # of a value are stripped.
    if "\n" in value or "\r" in value:
        raise ConfigValueError(f"{key}: a line break cannot be passed through supervisor's configuration")
    if value and (value[0] in "'\"" or value[-1] in "'\""):
        raise ConfigValueError(f"{key}: a value cannot start or end with a quote in supervisor's configuration")
    if '"' not in value:
        return f'{key}="{value}"'
    if "'" not in value:
        return f"{key}='{value}'"
    raise ConfigValueError(f"{key}: a value cannot hold both kinds of quote in supervisor's configuration")


def environment_line(env: dict[str, str]) -> str:
    return ",".join(_quoted(k, v) for k, v in sorted(env.items()))


def render(*, sock: Path, logs: Path, pidfile: Path, directory: Path, programs: Iterable[Program]) -> str:
    """The whole ``supervisord.conf`` of a stack."""
    parser = configparser.ConfigParser(interpolation=configparser.BasicInterpolation())
    parser.optionxform = str  # keys as written

    def section(name: str, **values: object) -> None:
        for key, value in values.items():
            if _INLINE_COMMENT.search(str(value)):
                raise ConfigValueError(f"{name} {key}: supervisor reads a blank then ';' or '#' as a comment")
        # BasicInterpolation checks on set that every % is escaped: supervisor reads them the same way.
        parser[name] = {key: str(value).replace("%", "%%") for key, value in values.items()}

    section("unix_http_server", file=sock, chmod="0700")
    section(
        "supervisord",
        logfile=logs / "supervisord.log",
        pidfile=pidfile,
        directory=directory,
        childlogdir=logs,
    )
    section(
        "rpcinterface:supervisor",
        **{"supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"},
    )
    section("supervisorctl", serverurl=f"unix://{sock}")
    for program in programs:
        section(
            f"program:{program.name}",
            command=program.command,
            directory=program.directory,
            environment=environment_line(program.env),
            priority=program.priority,
            autostart="true",
            autorestart="true",
            startsecs=2,
            startretries=100,
            stopwaitsecs=program.stopwait,
            stopasgroup="true",
            killasgroup="true",
            redirect_stderr="true",
            stdout_logfile=logs / f"{program.name}.log",
            stdout_logfile_maxbytes="20MB",
            stdout_logfile_backups=2,
        )
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def read_programs(conf: Path) -> dict[str, Program]:
    """The programs of a configuration :func:`render` wrote, values as the processes get them."""
    from supervisor.datatypes import dict_of_key_value_pairs  # noqa: PLC0415 - only inside the venv

    parser = configparser.ConfigParser(interpolation=configparser.BasicInterpolation(), strict=False)
    parser.optionxform = str
    parser.read(conf)
    programs = {}
    for name in parser.sections():
        if not name.startswith("program:"):
            continue
        values = parser[name]
        program = Program(
            name.split(":", 1)[1],
            shlex.split(values.get("command", "")),
            values.get("directory", ""),
            dict_of_key_value_pairs(values.get("environment", "")),
            int(values.get("priority", "999")),
            int(values.get("stopwaitsecs", "10")),
        )
        programs[program.name] = program
    return programs


class Supervisor:
    """A running ``supervisord``, through its XML-RPC interface on the stack's unix socket."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock

    @property
    def rpc(self):
        from supervisor.xmlrpc import SupervisorTransport  # noqa: PLC0415 - only inside the venv

        transport = SupervisorTransport(None, None, f"unix://{self.sock}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def pid(self) -> int | None:
        """supervisord's pid, or None when none answers on the socket."""
        if not self.sock.exists():
            return None
        try:
            return int(self.rpc.getPID())
        except (OSError, xmlrpc.client.Error):
            return None

    def running(self) -> bool:
        return self.pid() is not None

    def processes(self) -> list[dict]:
        """Every program: name, statename, pid (see supervisor's getAllProcessInfo)."""
        return self.rpc.getAllProcessInfo()

    def states(self) -> dict[str, str]:
        return {p["name"]: p["statename"] for p in self.processes()}

    def update(self) -> set[str]:
        """Read the configuration file again and apply it (``supervisorctl update``): programs
        removed are stopped, programs changed are stopped and started with their new
        configuration, new ones are started. Returns the names of those changed or new."""
        rpc = self.rpc
        added, changed, removed = rpc.reloadConfig()[0]
        for name in removed:
            rpc.stopProcessGroup(name)
            rpc.removeProcessGroup(name)
        for name in changed:
            rpc.stopProcessGroup(name)
            rpc.removeProcessGroup(name)
            rpc.addProcessGroup(name)
        for name in added:
            rpc.addProcessGroup(name)
        return set(added) | set(changed)

    def start_all(self) -> None:
        self.rpc.startAllProcesses()

    def restart(self, names: Iterable[str]) -> list[str]:
        """Stop the programs, then start them, each waiting for the state it asked
        (``supervisorctl restart``). Returns what could not be started, one line each."""
        rpc = self.rpc
        names = list(names)
        for name in names:
            try:
                rpc.stopProcess(name)
            except xmlrpc.client.Fault:  # not running: nothing to stop
                pass
        problems = []
        for name in names:
            try:
                rpc.startProcess(name)
            except xmlrpc.client.Fault as exc:
                problems.append(f"{name}: {exc.faultString}")
        return problems

    def stop_all(self, *, last: str | None = None, timeout: float = 30) -> None:
        """Signal every program but ``last`` at once, rather than one after another as
        supervisord's shutdown does (each web server takes seconds to finish its requests),
        wait for them to end, then stop ``last``."""
        rpc = self.rpc
        running = [p["name"] for p in rpc.getAllProcessInfo() if p["statename"] in ACTIVE_STATES]
        for name in running:
            if name != last:
                rpc.stopProcess(name, False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.states()
            if all(state not in ("STOPPING", "RUNNING") for name, state in states.items() if name != last):
                break
            time.sleep(0.2)
        if last in running:
            rpc.stopProcess(last, True)

    def shutdown(self) -> None:
        self.rpc.shutdown()

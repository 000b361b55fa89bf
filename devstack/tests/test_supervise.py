"""supervisor's configuration as written here, read back by supervisor itself, and a real
supervisord taking a changed setting on update."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from devstack.supervise import ConfigValueError, Program, Supervisor, read_programs, render


def _write(tmp_path: Path, *programs: Program) -> Path:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        render(
            sock=tmp_path / "s.sock",
            logs=tmp_path,
            pidfile=tmp_path / "supervisord.pid",
            directory=tmp_path,
            programs=programs,
        )
    )
    return conf


def _as_supervisor_reads_it(conf: Path) -> dict[str, tuple[str, dict[str, str]]]:
    options = ServerOptions()
    options.configfile = str(conf)
    options.process_config(do_usage=False)
    return {
        process.name: (process.command, process.environment)
        for group in options.process_group_configs
        for process in group.process_configs
    }


AWKWARD = {
    "PERCENT": "50%off",
    "LOOKS_LIKE_EXPANSION": "%(here)s and %(ENV_HOME)s",
    "DOUBLED": "%%",
    "COMMAS_AND_EQUALS": "a=1,b=2",
    "DOUBLE_QUOTES_INSIDE": 'say "hi" now',
    "SINGLE_QUOTES_INSIDE": "it's",
    "BACKSLASH": "C:\\path\\n",
    "EMPTY": "",
}


def test_a_percent_or_a_quote_in_an_env_value_reaches_the_program_unchanged(tmp_path):
    conf = _write(tmp_path, Program("web", ["/bin/sleep", "600"], tmp_path, AWKWARD))

    command, env = _as_supervisor_reads_it(conf)["web"]

    assert env == AWKWARD
    assert command == "/bin/sleep 600"


def test_the_configuration_reads_back_as_written(tmp_path):
    program = Program("order", ["/v/bin/granian", "--port", "8003"], tmp_path, {"A": "1%"}, priority=20, stopwait=15)
    conf = _write(tmp_path, program)

    assert read_programs(conf) == {"order": Program("order", program.argv, str(tmp_path), {"A": "1%"}, 20, 15)}


@pytest.mark.parametrize(
    "value",
    ["both \" and ' quotes", '"quoted at the ends"', "two\nlines", "blank then ; semicolon", "blank then # hash"],
)
def test_a_value_supervisor_would_read_otherwise_is_refused_by_name(tmp_path, value):
    with pytest.raises(ConfigValueError, match="environment|BAD"):
        _write(tmp_path, Program("web", ["/bin/true"], tmp_path, {"BAD": value}))


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _wait(predicate, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


@pytest.fixture
def supervisord(tmp_path):
    """A real supervisord on a configuration of one program, stopped afterwards."""
    sock_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    sock = sock_dir / f"devstack-test-{os.getpid()}.sock"  # unix socket paths are short
    conf = tmp_path / "supervisord.conf"

    def write(env: dict[str, str]) -> None:
        program = Program("sleeper", ["/bin/sleep", "600"], tmp_path, env, stopwait=2)
        conf.write_text(
            render(
                sock=sock, logs=tmp_path, pidfile=tmp_path / "supervisord.pid", directory=tmp_path, programs=[program]
            )
        )

    write({"ARGON2_TIME_COST": "2", "PERCENT": "5%"})
    supervisord_bin = Path(sys.executable).parent / "supervisord"
    subprocess.run([str(supervisord_bin), "-c", str(conf)], check=True)
    sup = Supervisor(sock)
    try:
        _wait(sup.running, "supervisord answers")
        yield sup, write
    finally:
        if sup.running():
            sup.stop_all()
            sup.shutdown()
            _wait(lambda: not sock.exists() or not sup.running(), "supervisord ends")


def _running_pid(sup: Supervisor, name: str) -> int:
    return _wait(
        lambda: next((p["pid"] for p in sup.processes() if p["name"] == name and p["statename"] == "RUNNING"), 0),
        f"{name} running",
    )


def test_a_changed_setting_reaches_the_program_on_update_and_an_unchanged_one_is_left_alone(supervisord):
    sup, write = supervisord
    first = _running_pid(sup, "sleeper")
    assert _environ(first)["ARGON2_TIME_COST"] == "2"
    assert _environ(first)["PERCENT"] == "5%"

    assert sup.update() == set()  # nothing changed: nothing restarted
    assert _running_pid(sup, "sleeper") == first

    write({"ARGON2_TIME_COST": "3", "PERCENT": "5%"})
    assert sup.update() == {"sleeper"}

    second = _running_pid(sup, "sleeper")
    assert second != first
    assert _environ(second)["ARGON2_TIME_COST"] == "3"


def test_restart_starts_the_program_again(supervisord):
    sup, _ = supervisord
    first = _running_pid(sup, "sleeper")

    assert sup.restart(["sleeper"]) == []

    assert _running_pid(sup, "sleeper") != first
    assert sup.states() == {"sleeper": "RUNNING"}

"""What the runner knows about the stack under test: addresses, databases, sizing, operator commands.

Everything is read from the stack's own supervisor configuration (``.run/<stack>/
supervisord.conf``, written by ``manage_all.py up``), so the load test sees the same
ports, database URLs and gunicorn sizes the running processes were started with, and a
results folder can say what was measured. Only the non-secret keys are kept.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devstack.supervise import read_programs
from shared.topology import WEB

ROOT = Path(__file__).resolve().parents[1]
#: environment keys worth recording with a result (settings that change what is measured)
RECORDED_ENV = (
    "STOCK_READS_FROM_CACHE",
    "CATALOG_CACHE_SECONDS",
    "ORDER_PAYMENT_DEADLINE_SECONDS",
    "RATE_LIMIT_SCALE",
    "LOG_LEVEL",
    "JWT_ACCESS_TTL_SECONDS",
    "PAYMENT_FAKE_DECLINE_RATE",
    "PAYMENT_FAKE_TIMEOUT_RATE",
    "RATE_ORDER_ATTEMPTS_PER_MEMBER",
    "RATE_ORDER_WINDOW_SECONDS",
)


@dataclass
class Program:
    name: str
    command: str
    env: dict[str, str] = field(default_factory=dict)
    directory: str = ""

    @property
    def web(self) -> dict[str, int | str] | None:
        """Server, bind address, workers and threads when this program is a web server (gunicorn or granian)."""
        args = shlex.split(self.command)
        server = next((s for s in ("gunicorn", "granian") if any(a.endswith(f"/{s}") or a == s for a in args)), None)
        if server is None:
            return None

        def opt(flag: str, default: str = "") -> str:
            return args[args.index(flag) + 1] if flag in args else default

        if server == "granian":
            return {
                "server": server,
                "bind": f"{opt('--host', '127.0.0.1')}:{opt('--port', '8000')}",
                "workers": int(opt("--workers", "1")),
                "threads": int(opt("--blocking-threads", "1")),
                "worker_class": "wsgi",
            }
        return {
            "server": server,
            "bind": opt("--bind"),
            "workers": int(opt("--workers", "1")),
            "threads": int(opt("--threads", "1")),
            "worker_class": opt("--worker-class", "sync"),
        }


@dataclass
class Stack:
    name: str
    programs: dict[str, Program]
    #: the checkout whose manage_all.py runs this stack (operator commands go through it)
    root: Path = ROOT
    run_dir: Path | None = None

    def url(self, service: str) -> str:
        g = self.programs[service].web
        assert g, f"{service} is not a web process"
        return f"http://{g['bind']}"

    def database_url(self, service: str) -> str:
        url = self.programs[service].env.get("DATABASE_URL", "")
        # psycopg takes postgresql:// URLs; the services' env uses Django's postgres:// spelling.
        return re.sub(r"^postgres://", "postgresql://", url)

    @property
    def redis_url(self) -> str:
        return self.programs["gateway"].env.get("REDIS_URL", "redis://127.0.0.1:6379/0")

    @property
    def mail_dir(self) -> Path:
        return Path(self.programs["member"].env.get("EMAIL_FILE_PATH", str(ROOT / ".run" / self.name / "mail")))

    def setting(self, service: str, key: str, default: str = "") -> str:
        """A setting given to the service in its supervisor environment (not what supervisord itself inherited)."""
        return self.programs[service].env.get(key, default)

    def sizing(self) -> dict[str, object]:
        """Web server sizing per service and the other processes running: recorded with every result."""
        web = {name: p.web for name, p in self.programs.items() if p.web}
        others = sorted(name for name, p in self.programs.items() if not p.web)
        env = {k: v for k, v in self.programs["order"].env.items() if k in RECORDED_ENV}
        env.update({k: v for k, v in self.programs["inventory"].env.items() if k in RECORDED_ENV})
        env.update({k: v for k, v in self.programs["gateway"].env.items() if k in RECORDED_ENV})
        return {"stack": self.name, "web": web, "other_processes": others, "settings_in_supervisor_env": env}

    def manage(self, service: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """An operator command through ``manage_all.py manage`` (the documented way in)."""
        return subprocess.run(
            [sys.executable, str(self.root / "manage_all.py"), "--stack", self.name, "manage", service, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def manage_json(self, service: str, *args: str, timeout: float = 120) -> tuple[int, dict]:
        """Run an operator command that prints JSON (possibly after other lines); return (exit code, JSON)."""
        result = self.manage(service, *args, timeout=timeout)
        return result.returncode, parse_json_output(result.stdout, result.stderr)


def parse_json_output(stdout: str, stderr: str = "") -> dict:
    """The JSON object a command printed: the whole output, or its last line."""
    text = stdout.strip()
    for candidate in (text, text.splitlines()[-1] if text else ""):
        try:
            value = json.loads(candidate)
            if isinstance(value, dict):
                return value
        except ValueError:
            continue
    start = text.find("{")
    if start >= 0:
        try:
            return json.loads(text[start:])
        except ValueError:
            pass
    raise ValueError(f"no JSON in the command's output:\n{stdout}\n{stderr}")


def load_stack(name: str = "dev", run_dir: Path | None = None) -> Stack:
    """The stack started from this checkout, or the one whose ``.run/<name>`` folder is ``run_dir``."""
    run_dir = Path(run_dir).resolve() if run_dir else ROOT / ".run" / name
    conf = run_dir / "supervisord.conf"
    if not conf.exists():
        raise SystemExit(f"no {name} stack configuration at {conf}: start it with python manage_all.py up")
    programs = {p.name: Program(p.name, p.command, p.env, str(p.directory)) for p in read_programs(conf).values()}
    missing = [s for s in WEB if s not in programs]
    if missing:
        raise SystemExit(f"the {name} stack's configuration lacks {', '.join(missing)}")
    return Stack(name, programs, root=run_dir.parents[1], run_dir=run_dir)


def machine() -> dict[str, object]:
    """The machine the numbers came from (load generator and stack share it)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem_gb = round(kb / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    # Other work on the machine (test suites, builds) takes cores from both sides: say how busy it was.
    load = [round(x, 2) for x in os.getloadavg()]
    return {
        "load_average_1_5_15_min_at_start": load,
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }

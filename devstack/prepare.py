"""What a stack needs before its processes start: PostgreSQL and Redis reached, a database
per service, migrations; and each service's ``manage.py`` run with the stack's settings."""

from __future__ import annotations

import os
import socket
import subprocess
import time

from shared.topology import SERVICES

from .console import die, say
from .health import fetch_json
from .stacks import Stack
from .venv import ROOT, VENV_PY


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


def empty_stack_data(stack: Stack) -> None:
    """Drop a throw-away stack's databases, empty its Redis database and forget its demo load.

    So each test run starts as on a new machine: what an earlier run or a benchmark on the
    same stack left behind (members, drops, the address's rate-limit counts) never meets
    the tests. Thousands of joins from one address spend its e-mail code limit for ten
    minutes, for example. The developer's stack keeps its data.
    """
    if stack.name == "dev":
        raise ValueError("the developer's stack keeps its data")
    import psycopg  # noqa: PLC0415
    import redis  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    server = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        for service in SERVICES:
            name = stack.database_url(service).rsplit("/", 1)[1]
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    redis.Redis.from_url(stack.redis_url, socket_connect_timeout=2).flushdb()
    (stack.dir / "demo-loaded").unlink(missing_ok=True)


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


def seed_demo(stack: Stack) -> None:
    """A few clothes for a fresh shop, created through the operator command (once)."""
    marker = stack.dir / "demo-loaded"
    if marker.exists():
        return
    # Only into an empty catalog: asked of the catalog's own list, which counts every cloth.
    status, page = fetch_json(stack.url("catalog") + "/cloth/list?page_size=1")
    if status != 200 or not isinstance(page, dict) or page.get("count") != 0:
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

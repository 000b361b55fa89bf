"""Every setting the README's configuration table names reaches the developer stack's
processes through the supervisor configuration that ``up`` and ``restart`` write."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from devstack import processes, stacks
from devstack.supervise import read_programs
from shared.topology import CONSUMERS, PASSED_PREFIXES, SERVICES, WEB

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_variables() -> list[str]:
    """The variables of the README's configuration table, ``<SERVICE>`` spelled ``ORDER``."""
    text = README.read_text()
    table = text.split("## Configuration", 1)[1].split("\n\n", 2)[1]
    names = []
    for row in table.splitlines()[2:]:
        first_column = row.split("|")[1]
        names += [n.replace("<SERVICE>", "ORDER") for n in re.findall(r"`([A-Z0-9_<>]+)`", first_column)]
    return names


#: how each variable that is not passed as it is shows in the configuration
SPECIAL = {
    "GATEWAY_PORT": "the gateway's port, and the services' next to it",
    "POSTGRES_URL": "each service's DATABASE_URL",
    "ORDER_DATABASE_URL": "the order service's DATABASE_URL",
    "WEB_SERVER": "every web process's command",
    "ORDER_WEB_SERVER": "the order service's web command",
    "ORDER_WORKERS": "the order service's web command",
    "ORDER_THREADS": "the order service's web command",
    "ORDER_WORKER_CLASS": "the order service's web command (gunicorn's)",
}


def test_the_readme_table_is_read():
    names = documented_variables()
    assert {"ARGON2_MEMORY_KIB", "REFRESH_REUSE_GRACE_SECONDS", "GATEWAY_PORT", "LOG_LEVEL"} <= set(names)


@pytest.fixture
def dev_stack(tmp_path, monkeypatch):
    """The dev stack's configuration written from a shell that sets every documented variable."""
    monkeypatch.setattr(stacks, "RUN", tmp_path)  # secrets, logs and mail of this test only
    given = {}
    for name in documented_variables():
        if name not in SPECIAL:
            given[name] = f"value-of-{name.lower()}"
    given["KAFKA_BOOTSTRAP_SERVERS"] = "broker.example:9092"  # (also: no bundled broker to look up)
    given["REDIS_URL"] = "redis://cache.example:6379/3"
    special = {
        "GATEWAY_PORT": "9100",
        "POSTGRES_URL": "postgres://pg.example:5432",
        "ORDER_DATABASE_URL": "postgres://orders.example:5432/orders",
        "WEB_SERVER": "gunicorn",
        "ORDER_WEB_SERVER": "gunicorn",
        "ORDER_WORKERS": "7",
        "ORDER_THREADS": "5",
        "ORDER_WORKER_CLASS": "gthread",
    }
    for name, value in {**given, **special}.items():
        monkeypatch.setenv(name, value)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(processes.supervisor_config(stacks.make_stack("dev")))
    return read_programs(conf), given


def test_every_documented_setting_reaches_every_process(dev_stack):
    programs, given = dev_stack
    names = [*WEB, *(f"{s}-worker" for s in SERVICES), *(f"{s}-consumer" for s in CONSUMERS)]
    assert sorted(programs) == sorted(names)
    for name in names:
        env = programs[name].env
        missing = {k: v for k, v in given.items() if env.get(k) != v}
        assert not missing, f"{name} lacks {sorted(missing)}"


def test_the_settings_that_shape_commands_and_addresses_reach_them(dev_stack):
    programs, _ = dev_stack
    order = shlex.split(programs["order"].command)
    assert order[0].endswith("/gunicorn")
    assert order[order.index("--bind") + 1] == "127.0.0.1:9103"
    assert order[order.index("--workers") + 1] == "7"
    assert order[order.index("--threads") + 1] == "5"
    assert order[order.index("--worker-class") + 1] == "gthread"
    assert shlex.split(programs["catalog"].command)[0].endswith("/gunicorn")  # WEB_SERVER: every one
    gateway = shlex.split(programs["gateway"].command)  # gthread telling Django each request's wait for a thread
    assert gateway[gateway.index("--worker-class") + 1] == "shared.gunicorn_worker.ThreadWorker"
    assert gateway[gateway.index("--threads") + 1] == "8"
    assert "--bind" in programs["gateway"].argv and "127.0.0.1:9100" in programs["gateway"].argv
    assert programs["order"].env["DATABASE_URL"] == "postgres://orders.example:5432/orders"
    assert programs["member"].env["DATABASE_URL"] == "postgres://pg.example:5432/shop_member"
    assert programs["payment-worker"].env["ORDER_SERVICE_URL"] == "http://127.0.0.1:9103"


def test_every_documented_variable_is_checked():
    # A variable added to the README reaches the processes through PASSED_PREFIXES, or is
    # one of those this file checks by hand.
    for name in documented_variables():
        assert name in SPECIAL or name.startswith(PASSED_PREFIXES) or name in _BY_THE_STACK, name


#: set by the stack itself from the operator's variable of the same name
_BY_THE_STACK = {
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "DJANGO_SECRET_KEY",
    "INTERNAL_API_SECRET",
    "JWT_SIGNING_KEY",
    "LOG_LEVEL",
}


def test_every_process_of_a_service_shares_its_metrics_directory_and_the_gateway_listens_for_prometheus(dev_stack):
    programs, _ = dev_stack
    for service in SERVICES:
        dirs = {programs[p].env["PROMETHEUS_MULTIPROC_DIR"] for p in programs if p.split("-")[0] == service}
        assert len(dirs) == 1 and next(iter(dirs)).endswith(f"/metrics/{service}")
    gateway = programs["gateway"].argv
    binds = [gateway[i + 1] for i, arg in enumerate(gateway) if arg == "--bind"]
    assert binds == ["127.0.0.1:9100", "127.0.0.1:9109"]  # the public port, then the metrics one
    assert programs["gateway"].env["GATEWAY_METRICS_PORT"] == "9109"

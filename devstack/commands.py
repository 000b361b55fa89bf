"""The operator's commands on a stack: up, down, status, logs, restart, manage, loadtest."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
import xmlrpc.client

from shared.topology import SERVICES, WEB

from .console import die, say
from .health import fetch_json, wait_healthy
from .prepare import _port_open, check_servers, create_databases, migrate, run_manage, seed_demo
from .processes import supervisor, supervisor_config
from .stacks import Stack, make_stack
from .venv import ROOT, VENV, VENV_PY


def cmd_up(args: argparse.Namespace, stack: Stack | None = None) -> int:
    stack = stack or make_stack(args.stack)
    say(f"starting the {stack.name} stack ...")
    check_servers(stack)
    create_databases(stack)
    migrate(stack)
    conf = stack.dir / "supervisord.conf"
    conf.write_text(supervisor_config(stack))
    sup = supervisor(stack)
    if sup.running():
        sup.update()
        sup.start_all()
    else:
        shutil.rmtree(stack.metrics_dir, ignore_errors=True)  # counters start again with the stack
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
    sup = supervisor(stack)
    pid = sup.pid()
    if pid is None:
        say(f"the {stack.name} stack is not running")
        return 0
    try:
        # The broker last: the others leave their consumer groups while it is up.
        sup.stop_all(last="kafka")
        sup.shutdown()
    except (OSError, xmlrpc.client.Error) as exc:
        say(f"  supervisord did not answer every request ({exc}); waiting for it to end")
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


def cmd_status(args: argparse.Namespace) -> int:
    stack = make_stack(args.stack)
    sup = supervisor(stack)
    if not sup.running():
        say(f"the {stack.name} stack is not running (python manage_all.py up)")
        return 3
    processes = sorted(sup.processes(), key=lambda p: p["name"])
    health = {s: fetch_json(stack.url(s) + "/health") for s in WEB}
    say(f"{'process':<22}{'state':<10}{'pid':<9}{'port':<7}health")
    ok = True
    for process in processes:
        name, state = process["name"], process["statename"]
        pid = str(process["pid"]) if state == "RUNNING" and process["pid"] else "-"
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
    sup = supervisor(stack)
    if not sup.running():
        die("the stack is not running (python manage_all.py up)")
    # Rewrite the config first: settings given in the environment now apply on restart.
    # Programs whose config changed are restarted by `update`; the others by `restart`
    # (restarting one twice in a row kills a consumer in the middle of joining its group).
    (stack.dir / "supervisord.conf").write_text(supervisor_config(stack))
    changed = sup.update()
    known = {p["name"] for p in sup.processes()}
    services = args.services or WEB
    if "kafka" in services:
        say("note: the bundled broker keeps nothing on disk; after its restart the relays publish again")
    # The broker is restarted only when named: a restart loses its topics and offsets.
    targets = [p for s in services for p in (s, f"{s}-worker", f"{s}-consumer") if p in known and p not in changed]
    for problem in sup.restart(targets):
        say(f"  {problem}")
    return 0 if wait_healthy(stack, timeout=60) else 1


def cmd_manage(args: argparse.Namespace) -> int:
    stack = make_stack(args.stack)
    if args.service not in SERVICES:
        die(f"service must be one of: {', '.join(SERVICES)}")
    return run_manage(stack, args.service, *args.args, check=False).returncode


def cmd_watch(args: argparse.Namespace) -> int:
    """A drop live in the terminal (loadtest/watch.py reads every service's /metrics)."""
    argv = [str(VENV_PY), str(ROOT / "loadtest" / "watch.py"), "--stack", args.stack, "--interval", str(args.interval)]
    argv += ["--once"] if args.once else []
    argv += [args.cloth_id] if args.cloth_id else []
    return subprocess.call(argv)


def cmd_loadtest(args: argparse.Namespace) -> int:
    runner = ROOT / "loadtest" / "run.py"
    if not runner.exists():
        die("no load tests yet (loadtest/run.py)")
    return subprocess.call([str(VENV_PY), str(runner), *args.args], cwd=ROOT)

"""The command line of ``manage_all.py``: parse, move into the virtualenv, dispatch."""

from __future__ import annotations

import argparse
import os
import signal

from .venv import ROOT, reexec_in_venv


def main(description: str) -> int:
    # `status | head` and the like: a closed pipe ends the output quietly, not with a traceback.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = argparse.ArgumentParser(prog="manage_all.py", description=description)
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
        "--only",
        action="append",
        help="lint, devstack, shared, gateway, a service name, loadtest, e2e or api (repeatable)",
    )
    p.add_argument("--keep", action="store_true", help="leave the end-to-end stack running afterwards")
    p.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    p = sub.add_parser("loadtest", help="run a locust scenario against the running stack")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("watch", help="watch a drop live: units left, clicks and wins per second, lag, drift")
    p.add_argument("cloth_id", nargs="?", help="one cloth (default: every drop the inventory shows)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    p.add_argument("--once", action="store_true", help="print one screen and stop")
    p = sub.add_parser("events-docs", help="write docs/events/ from the event contracts (shared/contracts)")
    p.add_argument("--check", action="store_true", help="only say which pages differ (exit 1 if any)")
    args = parser.parse_args()
    reexec_in_venv()
    os.chdir(ROOT)
    # Imported once inside the virtualenv: the commands use its packages.
    from .commands import (  # noqa: PLC0415
        cmd_down,
        cmd_loadtest,
        cmd_logs,
        cmd_manage,
        cmd_restart,
        cmd_status,
        cmd_up,
        cmd_watch,
    )
    from .testrun import cmd_test  # noqa: PLC0415

    if args.command == "events-docs":
        from shared.contracts.docs import main as events_docs  # noqa: PLC0415

        return events_docs(["--check"] if args.check else [])

    handler = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "logs": cmd_logs,
        "restart": cmd_restart,
        "manage": cmd_manage,
        "test": cmd_test,
        "loadtest": cmd_loadtest,
        "watch": cmd_watch,
    }[args.command]
    return handler(args)

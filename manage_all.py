#!/usr/bin/env python3
"""Run the whole shop: set-up, start, stop, status, logs, operator commands, tests, load tests.

    python manage_all.py up                 install what is missing, migrate, start everything
    python manage_all.py status             every process: up/down, pid, port, health
    python manage_all.py logs [SERVICE] [-f]
    python manage_all.py restart [SERVICE...]
    python manage_all.py manage SERVICE COMMAND [ARGS...]   any service's manage.py command
    python manage_all.py test               every service's tests, then end-to-end tests, then API fuzzing
    python manage_all.py loadtest SCENARIO  locust against the running stack (cost: CPU per request)
    python manage_all.py watch [CLOTH_ID]   a drop live in the terminal, from every service's /metrics
    python manage_all.py down

Only the standard library is used until the virtualenv (.venv in the repo) exists; then
this script re-runs itself inside it. Processes run under supervisor, one
``supervisord`` per stack: the developer stack ("dev") and the throw-away stack the
end-to-end tests bring up ("e2e", other ports, other databases, other Redis database).
The work is done by the ``devstack`` package beside this file.
"""

import sys

from devstack.cli import main

if __name__ == "__main__":
    sys.exit(main(__doc__.split("\n")[0]))

"""The virtualenv every process runs in: created and kept in step with requirements.txt.

Only the standard library is used here: this runs before the virtualenv exists.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from .console import say

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PY = VENV / "bin" / "python"
#: the entry point re-run inside the virtualenv
ENTRY = ROOT / "manage_all.py"


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
    # The virtualenv is this interpreter's version (made by it above), so its scheme names the folder.
    purelib = sysconfig.get_path("purelib", scheme="venv", vars={"base": str(VENV), "platbase": str(VENV)})
    Path(purelib, "drop_shop.pth").write_text(str(ROOT) + "\n")
    stamp.write_text(digest)


def reexec_in_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    ensure_venv()
    os.execv(str(VENV_PY), [str(VENV_PY), str(ENTRY), *sys.argv[1:]])

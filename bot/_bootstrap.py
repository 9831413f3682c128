"""Make `python3 -m bot …` work on a fresh clone: install into .venv and re-run there.

Standard library only, because it runs before any dependency is importable.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

_REQUIRED = (
    "aiohttp",
    "slack_bolt",
    "slack_sdk",
    "sqlite_utils",
    "phonenumbers",
    "cryptography",
    "prometheus_client",
)


def _missing() -> list[str]:
    return [name for name in _REQUIRED if importlib.util.find_spec(name) is None]


def ensure_installed() -> None:
    """Re-exec inside the checkout's .venv (creating it) when a dependency is missing here."""
    missing = _missing()
    if not missing:
        return
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").exists():
        sys.exit(
            f"Missing packages ({', '.join(missing)}); install the bot with: pip install slack-twilio-bridge"
        )
    venv = root / ".venv"
    python = venv / "bin" / "python"
    if os.environ.get("BOT_BOOTSTRAPPED") == "1":
        sys.exit(f"Missing packages ({', '.join(missing)}) even inside {venv}; delete it and run again.")
    print(f"First run: installing the bot into {venv} (about a minute)…", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603 (our own argv)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-e", str(root)], check=True, cwd=root)  # noqa: S603 (our own argv)
    env = dict(os.environ, BOT_BOOTSTRAPPED="1")
    os.chdir(root)
    os.execve(str(python), [str(python), "-m", "bot", *sys.argv[1:]], env)  # noqa: S606 (re-run ourselves)

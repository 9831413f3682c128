"""docker-compose.yml (two replicas, PostgreSQL, nginx) is valid and wires what the bot needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from cryptography.fernet import Fernet

from bot.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV = {
    "SECRET_KEY": Fernet.generate_key().decode(),
    "SLACK_SIGNING_SECRET": "0" * 32,
    "SLACK_BOT_TOKEN": "xoxb-compose-check",
}


def _docker_compose_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


def _interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` and `${NAME:?message}` with ENV, as `docker compose config` does."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in ENV:
            return ENV[name]
        assert op != ":?", f"{name} is required by docker-compose.yml: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, value)


def _config() -> dict[str, Any]:
    """The compose file as Compose reads it: `docker compose config` where it exists, else a YAML load."""
    if _docker_compose_answers():
        done = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "config", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **ENV},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return dict(yaml.safe_load(done.stdout))
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    for service in loaded["services"].values():
        environment = service.get("environment") or {}
        service["environment"] = {k: _interpolate(str(v)) for k, v in environment.items()}
    return dict(loaded)


def test_two_replicas_share_one_postgresql_and_one_secret_key() -> None:
    """bot-1 and bot-2 get the same DATABASE_URL (the postgres service) and SECRET_KEY; the bot accepts it."""
    services = _config()["services"]
    assert {"postgres", "bot-1", "bot-2", "lb"} <= set(services)
    one, two = services["bot-1"]["environment"], services["bot-2"]["environment"]
    assert one == two
    assert one["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in one["DATABASE_URL"]
    assert one["SECRET_KEY"] == ENV["SECRET_KEY"]
    settings = load_settings({k: str(v) for k, v in one.items()})
    assert (settings.engine, settings.port) == ("postgresql", 3000)
    assert "service_healthy" in str(services["bot-1"]["depends_on"])


def test_the_load_balancer_spreads_over_both_replicas() -> None:
    """nginx publishes the bot's port and its config names both replicas as upstreams."""
    lb = _config()["services"]["lb"]
    assert "3000" in str(lb["ports"])
    assert "nginx.conf" in str(lb["volumes"])
    nginx = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert "server bot-1:3000" in nginx and "server bot-2:3000" in nginx
    assert "proxy_next_upstream error timeout;" in nginx and "non_idempotent" not in nginx.split("#")[0]


def test_the_image_installs_the_postgresql_driver() -> None:
    """The Dockerfile installs the project's dependencies, and they include psycopg's binary wheel."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "['project']['dependencies']" in dockerfile
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"psycopg[binary]' in pyproject and '"psycopg-pool' in pyproject

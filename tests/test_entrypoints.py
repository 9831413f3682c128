"""Start-up contracts: settings fail fast by name, the routes, and the manifest matching the listeners."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest
from botproc import run_bot
from harness import Stack
from signing import post

from bot.core.commands import SUBCOMMANDS, USAGE
from bot.sandbox.slack import read_manifest
from bot.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"ADMIN_USER_IDS": "U012AB3CD,alice"}, "ADMIN_USER_IDS"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_APP_TOKEN": "xoxb-not-app"}, "SLACK_APP_TOKEN"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL"),
        ({"TWILIO_API_URL": "ftp://api.twilio.com"}, "TWILIO_API_URL"),
        ({"DEFAULT_REGION": "USA"}, "DEFAULT_REGION"),
        ({"TWILIO_CONCURRENCY": "0"}, "TWILIO_CONCURRENCY"),
        ({"TWILIO_TIMEOUT": "-1"}, "TWILIO_TIMEOUT"),
        ({"DATABASE_URL": "mysql://db/bot"}, "DATABASE_URL"),
        ({"DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE"),
        ({"OUTBOX_LEASE_SECONDS": "soon"}, "OUTBOX_LEASE_SECONDS"),
        ({"OUTBOX_LEASE_SECONDS": "4", "RECONCILE_INTERVAL": "3"}, "RECONCILE_INTERVAL"),
        ({"PUBLIC_URL": "bridge.example.com"}, "PUBLIC_URL"),
        ({"CONVERSATION_IDLE_DAYS": "0"}, "CONVERSATION_IDLE_DAYS"),
        ({"CONVERSATION_IDLE_DAYS": "a week"}, "CONVERSATION_IDLE_DAYS"),
    ],
)
def test_malformed_setting_is_named(env: dict[str, str], named: str) -> None:
    """A malformed variable stops start-up with a sentence that names it."""
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert named in str(caught.value)


def test_defaults_follow_the_design_contract() -> None:
    """With nothing set, the defaults are the ones design.md lists."""
    settings = load_settings({})
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.twilio_api_url == "https://api.twilio.com"
    assert settings.database_path == Path("./data/bot.db")
    assert (settings.host, settings.port) == ("0.0.0.0", 3000)
    assert (settings.log_level, settings.log_format) == ("INFO", "console")
    assert (settings.engine, settings.database_target) == ("sqlite", Path("./data/bot.db"))
    assert (settings.public_url, settings.conversation_idle_days) == (None, 7)
    assert (
        load_settings({"PUBLIC_URL": "https://bridge.example.com/"}).public_url
        == "https://bridge.example.com"
    )


def test_database_url_selects_postgresql_and_stays_out_of_repr() -> None:
    """DATABASE_URL picks PostgreSQL with its pool size; its password never shows in repr(Settings)."""
    url = "postgresql://bot:pa55word@db.example/bot"
    settings = load_settings({"DATABASE_URL": url, "DATABASE_POOL_SIZE": "4"})
    assert (settings.engine, settings.database_target, settings.database_pool_size) == ("postgresql", url, 4)
    assert "pa55word" not in repr(settings)


def test_settings_repr_hides_secrets() -> None:
    """repr(Settings) never shows the signing secret, tokens or key."""
    settings = load_settings(
        {
            "SLACK_SIGNING_SECRET": "sig-secret-123456",
            "SLACK_BOT_TOKEN": "xoxb-tok-123456",
            "SECRET_KEY": "k" * 44,
        }
    )
    shown = repr(settings)
    assert "sig-secret-123456" not in shown and "xoxb-tok-123456" not in shown and "k" * 44 not in shown


@pytest.mark.parametrize(("mode", "named"), [("serve", "SLACK_BOT_TOKEN"), ("socket", "SLACK_BOT_TOKEN")])
def test_missing_setting_stops_start_up_with_its_name(tmp_path: Path, mode: str, named: str) -> None:
    """`python -m bot serve|socket` without tokens exits 2, naming the variable, with no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["DATABASE_PATH"] = str(tmp_path / "bot.db")
    env["PYTHONPATH"] = str(REPO)
    proc = run_bot(mode, cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert named in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_cli_command_prints_usage(tmp_path: Path) -> None:
    """An unknown command word says so and lists the commands."""
    proc = run_bot("launch", cwd=REPO)
    assert proc.returncode == 2
    assert "Unknown command" in proc.stderr and "playground" in proc.stderr


async def test_healthz_answers_once_the_database_is_open(stack: Stack) -> None:
    """GET /healthz is 200 with JSON while the bot runs."""
    async with aiohttp.ClientSession() as session, session.get(f"{stack.bot_url}/healthz") as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["ok"] is True and data["database"] == "open" and data["engine"] == "sqlite"


def test_help_lists_every_subcommand() -> None:
    """`/twilio help` text names every subcommand of the grammar."""
    from bot.core.commands import DESCRIPTIONS
    from bot.slack.cards import help_card

    card = help_card(USAGE, DESCRIPTIONS)
    text = str(card.blocks)
    for sub in SUBCOMMANDS:
        assert USAGE[sub].split()[1] in text or sub in text


async def _signed_command(stack: Stack, command: str) -> int:
    body = (
        f"token=x&team_id=T0PLAYGRND&team_domain=playground&channel_id=C0GENERAL&channel_name=general"
        f"&user_id=U0ADMIN&user_name=ada&command={command}&text=help&api_app_id=A0PLAYGRND"
        f"&response_url=&trigger_id=1.2.3"
    ).encode()
    status, _ = await post(stack.bot_url, body, secret=stack.signing_secret)
    return status


async def test_every_manifest_command_has_a_listener_and_no_other(stack: Stack) -> None:
    """Each slash command in manifest.yml is answered by the bot; a command not in it is not handled."""
    manifest = read_manifest(REPO / "manifest.yml")
    commands = [c["command"] for c in manifest.commands]
    assert commands == ["/twilio"]
    for command in commands:
        assert await _signed_command(stack, command) == 200
    assert await _signed_command(stack, "/not-in-the-manifest") == 404


def test_malformed_secret_key_stops_start_up_without_echoing_it(tmp_path: Path) -> None:
    """A SECRET_KEY that is not a Fernet key is named, never printed, and nothing starts."""
    env = dict(os.environ, PYTHONPATH=str(REPO), DATABASE_PATH=str(tmp_path / "bot.db"), PORT="0")
    env.update(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s" * 32, SECRET_KEY="not-a-fernet-key-42")
    proc = run_bot("serve", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert "SECRET_KEY" in proc.stderr
    assert "not-a-fernet-key-42" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_worker_refuses_to_start_without_a_bot_token(tmp_path: Path) -> None:
    """`python -m bot work` with no SLACK_BOT_TOKEN says which variable is missing, no traceback."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    proc = run_bot("work", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert "SLACK_BOT_TOKEN" in proc.stderr and "Traceback" not in proc.stderr

"""The admin CLI's `installs list|remove TEAM`, and `rotate-key` re-encrypting the Slack tokens too."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.cli import main_installs, main_rotate_key
from storage.accounts import AccountStore, NewAccount
from storage.db import Database
from storage.installations import InstallationStore, StoredInstallation

KEY = Fernet.generate_key().decode()
BOT_TOKEN = "xoxb-1-cli-test-bot-token"
TWILIO_TOKEN = "9f86d081884c7d659a2feaa0c55ad015"
SID = "AC" + "0123456789abcdef" * 2


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A database with two installed workspaces, one of them with a Twilio account."""
    path = tmp_path / "bot.db"

    async def seed() -> None:
        db = await Database.connect(path, secret_keys=KEY)
        try:
            store = InstallationStore(db)
            for team, name, day in (("T0AAA", "Acme", 1), ("T0BBB", "Beta", 2)):
                await store.save(
                    StoredInstallation(
                        team_id=team,
                        enterprise_id=None,
                        is_enterprise_install=False,
                        bot_token=f"{BOT_TOKEN}-{team}",
                        team_name=name,
                        bot_scopes=("commands", "chat:write"),
                        installed_at=datetime(2026, 11, day, 9, 30, tzinfo=UTC),
                    )
                )
            await AccountStore(db).add(
                NewAccount(team_id="T0AAA", label="main", account_sid=SID, secret=TWILIO_TOKEN, added_by="U1")
            )
        finally:
            await db.close()

    asyncio.run(seed())
    return {"DATABASE_PATH": str(path), "SECRET_KEY": KEY}


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main_installs(argv, stdout=out, stderr=err, env=env)
    return code, out.getvalue(), err.getvalue()


def test_list_shows_team_name_time_and_scopes_never_a_token(env: dict[str, str]) -> None:
    """One line per workspace, oldest first; no token anywhere in the output."""
    code, out, err = _run(["list"], env)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["TEAM", "NAME", "INSTALLED", "AT", "SCOPES"]
    assert lines[1].split() == ["T0AAA", "Acme", "2026-11-01", "09:30", "UTC", "commands,chat:write"]
    assert lines[2].split()[:2] == ["T0BBB", "Beta"]
    assert "xoxb" not in out


def test_remove_forgets_tokens_and_twilio_accounts(env: dict[str, str]) -> None:
    """remove TEAM deletes its installation and Twilio accounts; the other workspace stays."""
    code, out, err = _run(["remove", "T0AAA"], env)
    assert code == 0, err
    assert out == (
        "Forgot team T0AAA: its Slack tokens, 1 Twilio account and 0 routes (with their conversations) are "
        "deleted; the audit log stays.\n"
    )
    code, out, _ = _run(["list"], env)
    assert "T0AAA" not in out and "T0BBB" in out

    async def left() -> int:
        db = await Database.connect(Path(env["DATABASE_PATH"]), secret_keys=KEY)
        try:
            return len(await AccountStore(db).list("T0AAA"))
        finally:
            await db.close()

    assert asyncio.run(left()) == 0


def test_remove_an_unknown_team_fails_in_one_sentence(env: dict[str, str]) -> None:
    """A team with nothing stored: exit 1 and a sentence pointing at `installs list`."""
    code, _, err = _run(["remove", "T0NOPE"], env)
    assert code == 1
    assert "has no installation" in err and "python -m bot installs list" in err


def test_remove_a_malformed_team_is_a_usage_error(env: dict[str, str]) -> None:
    """Not a team ID: exit 2 with a sentence."""
    code, _, err = _run(["remove", "acme"], env)
    assert code == 2 and "is not a Slack team ID" in err


def test_rotate_key_re_encrypts_the_slack_tokens_too(env: dict[str, str]) -> None:
    """rotate-key with NEW,OLD reports the Slack tokens it re-encrypted."""
    new = Fernet.generate_key().decode()
    out, err = io.StringIO(), io.StringIO()
    code = main_rotate_key([], stdout=out, stderr=err, env={**env, "SECRET_KEY": f"{new},{KEY}"})
    assert code == 0, err.getvalue()
    assert "Re-encrypted 2 stored Slack tokens as well." in out.getvalue()
    code, listed, _ = _run(["list"], {**env, "SECRET_KEY": new})
    assert code == 0 and "T0AAA" in listed

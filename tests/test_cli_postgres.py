"""The CLI on PostgreSQL: `migrate-sqlite-to-postgres`, and accounts over DATABASE_URL."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from botproc import unused_port
from test_cli import OLD_KEY, SID, TEAM, TOKEN, Result, run_accounts

from bot.cli import main_migrate

pytestmark = pytest.mark.postgres


def run_migrate(argv: list[str], env: dict[str, str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main_migrate(argv, stdout=out, stderr=err, env=env)
    return Result(code, out.getvalue(), err.getvalue())


def test_migrate_copies_into_an_empty_database_once(tmp_path: Path, postgres_schema: str) -> None:
    """The copy prints the counts; the accounts read back over DATABASE_URL; a second copy is refused."""
    sqlite_env = {"DATABASE_PATH": str(tmp_path / "bot.db"), "SECRET_KEY": OLD_KEY}
    argv = ["add", "--team", TEAM, "--label", "main", "--sid", SID, "--no-verify"]
    assert run_accounts(argv, sqlite_env, stdin=TOKEN + "\n").code == 0
    pg_env = {"DATABASE_URL": postgres_schema, "SECRET_KEY": OLD_KEY}

    copied = run_migrate(["--from", str(tmp_path / "bot.db")], pg_env)
    assert copied.code == 0, copied.err
    assert re.search(r"^accounts +1$", copied.out, re.M) and "the counts match" in copied.out
    listed = run_accounts(["list", "--team", TEAM], pg_env)
    assert listed.code == 0, listed.err
    assert "main" in listed.out and TOKEN not in listed.out

    again = run_migrate(["--from", str(tmp_path / "bot.db")], pg_env)
    assert again.code == 1
    assert "already holds data" in again.err and "Traceback" not in again.err


def test_migrate_needs_database_url_and_an_existing_file(tmp_path: Path, postgres_schema: str) -> None:
    """No DATABASE_URL is a usage error; a missing SQLite file is a sentence naming it."""
    unset = run_migrate(["--from", str(tmp_path / "bot.db")], {"SECRET_KEY": OLD_KEY})
    assert unset.code == 2 and "Set DATABASE_URL" in unset.err
    missing = run_migrate(
        ["--from", str(tmp_path / "nowhere.db")], {"DATABASE_URL": postgres_schema, "SECRET_KEY": OLD_KEY}
    )
    assert missing.code == 1 and "There is no SQLite database at" in missing.err


def test_an_unreachable_database_is_a_sentence() -> None:
    """DATABASE_URL with nothing listening: exit 1 with a sentence, the password never shown."""
    url = f"postgresql://bot:hunter2-secret@127.0.0.1:{unused_port()}/bot?connect_timeout=1"
    result = run_accounts(["list", "--team", TEAM], {"DATABASE_URL": url, "SECRET_KEY": OLD_KEY})
    assert result.code == 1
    assert "check DATABASE_URL and that the server is running" in result.err
    assert "hunter2-secret" not in result.err + result.out

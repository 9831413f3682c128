"""Copying a SQLite database into an empty PostgreSQL one: every row, secrets still encrypted, counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from storage_fixtures import DbTarget, claim_send, old_sqlite_utils_file

from storage.accounts import AccountStore, NewAccount
from storage.audit import AuditLog, NewAuditEntry
from storage.db import Database
from storage.installations import InstallationStore, OAuthStates, StoredInstallation
from storage.outbox import Outbox
from storage.sqlite_to_postgres import CopyError, copy_sqlite_to_postgres
from storage.teams import TeamSettings

pytestmark = pytest.mark.postgres

SQLITE_KEY = Fernet.generate_key().decode()
TOKEN = "9f86d081884c7d659a2feaa0c55ad015"
API_SECRET = "Zq7XvP2mKc9LwR4tYb6NhJ3sDf8GaQe1"
BOT_TOKEN = "xoxb-copy-test-bot-token"
TABLES = ("accounts", "audit", "outbox", "teams", "slack_installations", "slack_oauth_states")

# The conversation tables (migration 0009), empty in these files: copied too, with nothing in them.
NO_CONVERSATIONS = {"routes": 0, "conversations": 0, "inbound_messages": 0, "replies": 0, "slack_events": 0}


async def _fill(path: Path) -> None:
    """A SQLite bot database with rows in every table (ids with a gap, a lease, a removed account)."""
    db = await Database.connect(path, secret_keys=SQLITE_KEY)
    try:
        accounts = AccountStore(db)
        await accounts.add(
            NewAccount(team_id="T1", label="main", account_sid="AC" + "1" * 32, secret=TOKEN, added_by="U1")
        )
        await accounts.add(
            NewAccount(team_id="T1", label="gone", account_sid="AC" + "2" * 32, secret=TOKEN, added_by="U1")
        )
        await accounts.add(
            NewAccount(
                team_id="T2",
                label="main",
                account_sid="AC" + "3" * 32,
                api_key_sid="SK" + "4" * 32,
                secret=API_SECRET,
                added_by="U2",
            )
        )
        await accounts.remove("T1", "gone")
        for n in range(3):
            await AuditLog(db).record(
                NewAuditEntry(team_id="T1", user_id="U1", channel_id="C1", operation="send", outcome="ok")
            )
            await claim_send(
                Outbox(db),
                f"k{n}",
                request={"to": "+15551234567", "body": f"hello {n}%"},
                account_sid="AC" + "1" * 32,
                owner="r1" if n else None,
            )
        await TeamSettings(db).set_log_channel("T1", "C9", updated_by="U1")
        await InstallationStore(db).save(
            StoredInstallation(
                team_id="T1", enterprise_id=None, is_enterprise_install=False, bot_token=BOT_TOKEN
            )
        )
        await OAuthStates(db).issue()
    finally:
        await db.close()


async def _rows(db: Database, table: str) -> list[dict[str, object]]:
    order = {"teams": "team_id", "slack_oauth_states": "state"}.get(table, "id")
    return await db.fetch_all(f"SELECT * FROM {table} ORDER BY {order}")  # noqa: S608


async def test_every_row_is_copied_with_secrets_still_encrypted(tmp_path: Path, postgres_schema: str) -> None:
    """Counts per table come back; PostgreSQL holds the same rows and the same Fernet tokens."""
    source = tmp_path / "bot.db"
    await _fill(source)
    counts = await copy_sqlite_to_postgres(source, postgres_schema)
    assert counts == {
        "accounts": 2,
        "audit": 3,
        "journal": 0,
        "message_cards": 0,
        "outbox": 3,
        "teams": 1,
        **NO_CONVERSATIONS,
        "slack_installations": 1,
        "slack_oauth_states": 1,
    }

    sqlite_db = await Database.connect(source, secret_keys=SQLITE_KEY)
    pg = await DbTarget("postgresql", postgres_schema).open(SQLITE_KEY)
    try:
        for table in TABLES:
            assert await _rows(pg, table) == await _rows(sqlite_db, table), table
        raw = await pg.fetch_all("SELECT secret_enc FROM accounts")
        assert all(TOKEN not in row["secret_enc"] and API_SECRET not in row["secret_enc"] for row in raw)
        raw_tokens = await pg.fetch_all("SELECT bot_token_enc FROM slack_installations")
        assert raw_tokens and all(BOT_TOKEN not in row["bot_token_enc"] for row in raw_tokens)
        installed = await InstallationStore(pg).find(team_id="T1", enterprise_id=None)
        assert installed is not None and installed.bot_token == BOT_TOKEN
        found = await AccountStore(pg).credentials("T2", "main")
        assert found is not None and found[1].secret == API_SECRET
        # New rows get ids after the copied ones.
        added = await AccountStore(pg).add(
            NewAccount(team_id="T3", label="main", account_sid="AC" + "5" * 32, secret=TOKEN, added_by="U3")
        )
        assert added.id == 4
        entry, created = await claim_send(Outbox(pg), "k-new", account_sid=None)
        assert created and entry.id == 4
    finally:
        await sqlite_db.close()
        await pg.close()


async def test_the_source_file_is_left_untouched(tmp_path: Path, postgres_schema: str) -> None:
    """An older file is copied from a migrated snapshot: the file's own bytes stay the same."""
    source = tmp_path / "bot.db"
    old_sqlite_utils_file(source)  # still has teams.default_region and no lease columns
    before = source.read_bytes()
    assert await copy_sqlite_to_postgres(source, postgres_schema) == {
        "accounts": 0,
        "audit": 0,
        "journal": 0,
        "message_cards": 0,
        "outbox": 1,
        "teams": 1,
        **NO_CONVERSATIONS,
        "slack_installations": 0,
        "slack_oauth_states": 0,
    }
    assert source.read_bytes() == before
    pg = await DbTarget("postgresql", postgres_schema).open()
    try:
        assert await pg.fetch_all("SELECT team_id, log_channel_id FROM teams") == [
            {"team_id": "T1", "log_channel_id": "C1"}
        ]
    finally:
        await pg.close()


async def test_a_target_that_holds_data_is_refused(tmp_path: Path, postgres_schema: str) -> None:
    """A second copy into the same database is refused with a sentence, and nothing is added."""
    source = tmp_path / "bot.db"
    await _fill(source)
    await copy_sqlite_to_postgres(source, postgres_schema)
    with pytest.raises(CopyError, match=r"already holds data \(accounts: 2 rows, audit: 3 rows"):
        await copy_sqlite_to_postgres(source, postgres_schema)
    pg = await DbTarget("postgresql", postgres_schema).open()
    try:
        assert len(await _rows(pg, "audit")) == 3
    finally:
        await pg.close()


async def test_a_missing_source_or_a_non_postgres_target_is_a_sentence(
    tmp_path: Path, postgres_schema: str
) -> None:
    """No file at the path, or a target that is not a postgresql:// URL: CopyError saying what to give."""
    with pytest.raises(CopyError, match="There is no SQLite database at"):
        await copy_sqlite_to_postgres(tmp_path / "nope.db", postgres_schema)
    with pytest.raises(CopyError, match="postgresql:// URL"):
        await copy_sqlite_to_postgres(tmp_path / "nope.db", str(tmp_path / "other.db"))
    assert not (tmp_path / "nope.db").exists()

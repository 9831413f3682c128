"""Twilio accounts per workspace: encrypted secrets, defaults, tenant isolation and key rotation."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from storage_fixtures import DbTarget

from storage.accounts import AccountStore, NewAccount, StoredAccount, mask_sid
from storage.crypto import WrongKeyError
from storage.db import Database

SID_A = "AC" + "0123456789abcdef" * 2
SID_B = "AC" + "fedcba9876543210" * 2
KEY_SID = "SK" + "aa" * 16
TOKEN_A = "9f86d081884c7d659a2feaa0c55ad015"
TOKEN_B = "e3b0c44298fc1c149afbf4c8996fb924"
API_SECRET = "Zq7XvP2mKc9LwR4tYb6NhJ3sDf8GaQe1"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def store(db: Database) -> AccountStore:
    return AccountStore(db)


async def _add(store: AccountStore, team: str, label: str, **kwargs: Any) -> StoredAccount:
    values: dict[str, Any] = {"account_sid": SID_A, "secret": TOKEN_A, "added_by": "U1"}
    values.update(kwargs)
    make_default = values.pop("make_default", None)
    return await store.add(NewAccount(team_id=team, label=label, **values), make_default=make_default)


async def test_first_account_becomes_the_default(store: AccountStore) -> None:
    """A team's first account is its default; the second is not."""
    first = await _add(store, "T1", "main")
    second = await _add(store, "T1", "backup", account_sid=SID_B, secret=TOKEN_B)
    assert first.is_default and not second.is_default
    assert (await store.get("T1")) == first


async def test_stored_account_has_no_secret_field(store: AccountStore) -> None:
    """StoredAccount carries no secret, and its repr does not show one."""
    account = await _add(store, "T1", "main")
    assert "secret" not in {f.name for f in dataclasses.fields(StoredAccount)}
    assert TOKEN_A not in repr(account)


async def test_credentials_decrypt_the_stored_secret(store: AccountStore) -> None:
    """credentials() returns the account with its secret and API key SID."""
    await _add(store, "T1", "main", api_key_sid=KEY_SID, secret=API_SECRET, default_from="+15551234567")
    found = await store.credentials("T1", "main")
    assert found is not None
    account, creds = found
    assert (creds.account_sid, creds.secret, creds.api_key_sid) == (SID_A, API_SECRET, KEY_SID)
    assert account.default_from == "+15551234567"
    assert API_SECRET not in repr(creds)


async def test_adding_the_same_label_replaces_the_account(store: AccountStore) -> None:
    """Same (team, label) updates in place: same id, new SID and secret, default kept."""
    first = await _add(store, "T1", "main")
    again = await _add(store, "T1", "main", account_sid=SID_B, secret=TOKEN_B, added_by="U2")
    assert again.id == first.id and again.is_default
    assert again.account_sid == SID_B and again.added_by == "U2"
    assert len(await store.list("T1")) == 1
    found = await store.credentials("T1", "main")
    assert found is not None and found[1].secret == TOKEN_B


async def test_make_default_moves_the_flag(store: AccountStore) -> None:
    """make_default=True takes the flag from the previous default."""
    await _add(store, "T1", "main")
    backup = await _add(store, "T1", "backup", make_default=True)
    assert backup.is_default
    accounts = await store.list("T1")
    assert [(a.label, a.is_default) for a in accounts] == [("backup", True), ("main", False)]


async def test_list_puts_the_default_first_then_labels(store: AccountStore) -> None:
    """list() orders the default first, then alphabetically."""
    for label in ("zulu", "alpha", "mike"):
        await _add(store, "T1", label)
    assert [a.label for a in await store.list("T1")] == ["zulu", "alpha", "mike"]


async def test_removing_the_default_promotes_the_oldest_remaining(store: AccountStore) -> None:
    """The oldest remaining account becomes the default when the default goes."""
    await _add(store, "T1", "main")
    await _add(store, "T1", "zeta")
    await _add(store, "T1", "alpha")
    assert await store.remove("T1", "main") is True
    default = await store.get("T1")
    assert default is not None and default.label == "zeta" and default.is_default
    assert await store.remove("T1", "main") is False


async def test_removing_the_last_account_leaves_no_default(store: AccountStore) -> None:
    """A team without accounts has no default."""
    await _add(store, "T1", "main")
    await store.remove("T1", "main")
    assert await store.get("T1") is None
    assert await store.credentials("T1") is None


async def test_set_default_chooses_another_account(store: AccountStore) -> None:
    """set_default moves the flag; an unknown label returns False and changes nothing."""
    await _add(store, "T1", "main")
    await _add(store, "T1", "backup")
    assert await store.set_default("T1", "backup") is True
    assert await store.set_default("T1", "nope") is False
    default = await store.get("T1")
    assert default is not None and default.label == "backup"


async def test_one_team_can_never_reach_another_teams_account(store: AccountStore) -> None:
    """Team B cannot get, list, use, replace-into, set as default or remove team A's account."""
    await _add(store, "TA", "main")
    assert await store.get("TB", "main") is None
    assert await store.get("TB") is None
    assert await store.credentials("TB", "main") is None
    assert await store.credentials("TB") is None
    assert await store.list("TB") == []
    assert await store.set_default("TB", "main") is False
    assert await store.remove("TB", "main") is False
    await _add(store, "TB", "main", account_sid=SID_B, secret=TOKEN_B)
    found = await store.credentials("TA", "main")
    assert found is not None and found[1].secret == TOKEN_A and found[0].account_sid == SID_A
    assert [a.team_id for a in await store.list("TA")] == ["TA"]


async def test_labels_that_could_never_be_stored_find_nothing(store: AccountStore) -> None:
    """Odd labels (SQL, spaces, empty) return None or False rather than raising."""
    await _add(store, "T1", "main")
    for label in ("", "main' OR '1'='1", "with space"):
        assert await store.get("T1", label) is None
        assert await store.remove("T1", label) is False


async def test_labels_are_stored_exactly_as_given(store: AccountStore) -> None:
    """Storage keeps the label it is given (the bot checks and normalises it); an empty one is refused."""
    await _add(store, "T1", "Main")
    assert (await store.get("T1", "Main")) is not None
    assert await store.get("T1", "main") is None
    with pytest.raises(ValueError, match="label is required"):
        await _add(store, "T1", "")


async def test_concurrent_first_adds_leave_exactly_one_default(db_target: DbTarget) -> None:
    """Two replicas adding a team's first accounts at once: both stored, exactly one default."""
    a, b = await db_target.open(), await db_target.open()
    try:
        for team in ("T1", "T2", "T3"):
            await asyncio.gather(
                _add(AccountStore(a), team, "one"),
                _add(AccountStore(b), team, "two"),
                _add(AccountStore(a), team, "three"),
            )
            accounts = await AccountStore(b).list(team)
            assert len(accounts) == 3
            assert sum(account.is_default for account in accounts) == 1
    finally:
        await a.close()
        await b.close()


async def _store_two_teams(db_target: DbTarget, key: str) -> None:
    """Store an account for T1 (TOKEN_A) and one for T2 (TOKEN_B) with their secrets under `key`."""
    db = await db_target.open(key)
    await _add(AccountStore(db), "T1", "main")
    await _add(AccountStore(db), "T2", "main", secret=TOKEN_B)
    await db.close()


async def test_rotate_all_moves_every_secret_to_the_newest_key(db_target: DbTarget) -> None:
    """Old key second still decrypts; rotate_all re-encrypts; then the old key alone fails."""
    await _store_two_teams(db_target, OLD_KEY)

    db = await db_target.open(f"{NEW_KEY},{OLD_KEY}")
    store = AccountStore(db)
    found = await store.credentials("T1")
    assert found is not None and found[1].secret == TOKEN_A
    assert await store.rotate_all() == 2
    await db.close()

    db = await db_target.open(NEW_KEY)
    found = await AccountStore(db).credentials("T2")
    assert found is not None and found[1].secret == TOKEN_B
    await db.close()

    db = await db_target.open(OLD_KEY)
    try:
        with pytest.raises(WrongKeyError):
            await AccountStore(db).credentials("T1")
    finally:
        await db.close()


async def test_rotate_all_with_an_unknown_key_changes_nothing(db_target: DbTarget) -> None:
    """If any secret cannot be read, rotate_all raises and leaves every stored token as it was."""
    await _store_two_teams(db_target, OLD_KEY)
    db = await db_target.open(f"{NEW_KEY},{OLD_KEY}")
    await _add(AccountStore(db), "T3", "main")  # under NEW_KEY only
    await db.close()
    db = await db_target.open(OLD_KEY)
    try:
        before = await db.fetch_all("SELECT id, secret_enc FROM accounts ORDER BY id")
        with pytest.raises(WrongKeyError):
            await AccountStore(db).rotate_all()  # T1 and T2 rotate, then T3 cannot be read
        assert await db.fetch_all("SELECT id, secret_enc FROM accounts ORDER BY id") == before
    finally:
        await db.close()


def _leaks(folder: Path, secrets: list[str]) -> list[str]:
    found = []
    for file in sorted(folder.glob("bot.db*")):
        data = file.read_bytes()
        found += [f"{file.name}: {s[:4]}…" for s in secrets if s.encode() in data]
    return found


async def test_nothing_secret_reaches_the_database_files(tmp_path: Path) -> None:
    """Known secrets appear in no byte of bot.db, bot.db-wal or bot.db-shm, open or closed."""
    secrets = [TOKEN_A, TOKEN_B, API_SECRET]
    db = await Database.connect(tmp_path / "bot.db")
    store = AccountStore(db)
    await _add(store, "T1", "main", secret=TOKEN_A)
    await _add(store, "T1", "backup", secret=API_SECRET, api_key_sid=KEY_SID)
    await _add(store, "T2", "main", secret=TOKEN_B)
    await _add(store, "T1", "main", secret=TOKEN_B)  # replacing leaves no old plaintext either
    await store.remove("T1", "backup")
    assert (tmp_path / "bot.db-wal").stat().st_size > 0, "the WAL should hold the writes before close"
    assert {p.name for p in tmp_path.glob("bot.db*")} >= {"bot.db", "bot.db-wal", "bot.db-shm"}
    assert _leaks(tmp_path, secrets) == []
    await store.rotate_all()
    await db.close()
    assert _leaks(tmp_path, secrets) == []


@pytest.mark.postgres
async def test_nothing_secret_is_plaintext_in_postgres(postgres_schema: str) -> None:
    """In PostgreSQL's raw tables no column of any row holds a known secret, before or after rotation."""
    secrets = [TOKEN_A, TOKEN_B, API_SECRET]
    db = await DbTarget("postgresql", postgres_schema).open(OLD_KEY)
    try:
        store = AccountStore(db)
        await _add(store, "T1", "main", secret=TOKEN_A)
        await _add(store, "T1", "backup", secret=API_SECRET, api_key_sid=KEY_SID)
        await _add(store, "T2", "main", secret=TOKEN_B)

        async def leaks() -> list[str]:
            rows = await db.fetch_all("SELECT accounts::text AS whole FROM accounts")
            assert len(rows) == 3
            return [f"{s[:4]}…" for row in rows for s in secrets if s in row["whole"]]

        assert await leaks() == []
        await store.rotate_all()
        assert await leaks() == []
    finally:
        await db.close()


def test_mask_sid_shows_only_the_ends() -> None:
    """mask_sid keeps four characters at each end."""
    assert mask_sid(SID_A) == "AC01…cdef"
    assert mask_sid(None) == ""
    assert mask_sid("AC12") == "AC…"

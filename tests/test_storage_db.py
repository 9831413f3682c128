"""The database on both engines (statements, transactions, ping), and SQLite's WAL and writer thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlite_utils
from storage_fixtures import DbTarget

from storage.db import Database, DatabaseClosedError
from storage.migrations import MIGRATIONS, applied_migrations
from storage.sqlite import immediate

TABLES = {"accounts", "audit", "outbox", "teams"}


@pytest.fixture
async def file_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database.connect(tmp_path / "data" / "bot.db")
    yield db
    await db.close()


async def _count_teams(db: Database) -> int:
    row = await db.fetch_one("SELECT count(*) AS n FROM teams")
    assert row is not None
    return int(row["n"])


# ── both engines ─────────────────────────────────────────────────────────────────────────────────────


async def test_statements_round_trip_with_both_placeholder_styles(db: Database) -> None:
    """`?` and `:name` parameters, RETURNING, rowcounts and `%` in text work the same on both engines."""
    inserted = await db.fetch_one(
        "INSERT INTO teams (team_id, log_channel_id, updated_at) VALUES (:team, :channel, :at) "
        "RETURNING team_id",
        {"team": "T1", "channel": "C%1", "at": "now"},
    )
    assert inserted == {"team_id": "T1"}
    await db.execute_many(
        "INSERT INTO teams (team_id, updated_at) VALUES (?, ?)", [["T2", "now"], ["T3", "now"]]
    )
    changed = await db.execute("UPDATE teams SET updated_by = ? WHERE team_id != ?", ["U1", "T1"])
    assert changed == 2
    rows = await db.fetch_all("SELECT team_id FROM teams WHERE log_channel_id LIKE '%\\%%' ESCAPE '\\'")
    assert rows == [{"team_id": "T1"}]
    assert await db.fetch_one("SELECT team_id FROM teams WHERE team_id = ?", ["nobody"]) is None
    assert await db.execute(
        "INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'again') ON CONFLICT DO NOTHING"
    ) in (0, -1)
    assert await _count_teams(db) == 3


async def test_a_transaction_commits_together_or_not_at_all(db: Database) -> None:
    """A failing block leaves nothing behind; a finished one keeps every statement."""
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')")
            raise RuntimeError("boom")
    assert await _count_teams(db) == 0
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')")
        await tx.lock("teams")
        assert await tx.fetch_all("SELECT team_id FROM teams") == [{"team_id": "T1"}]
    assert await _count_teams(db) == 1


async def test_write_batches_commit_every_statement_together_or_none(db: Database) -> None:
    """A batch with a failing statement leaves nothing behind; a good one writes all its rows."""
    insert = "INSERT INTO teams (team_id, updated_at) VALUES (?, ?)"
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await db.write_batches([(insert, [["T1", "now"], ["T2", "now"]]), (insert, [["T1", "again"]])])
    assert await _count_teams(db) == 0
    await db.write_batches([(insert, [["T1", "now"], ["T2", "now"]]), (insert, []), (insert, [["T3", "x"]])])
    assert await _count_teams(db) == 3


async def test_a_transaction_cannot_be_used_after_it_ends(db: Database) -> None:
    """A statement through a finished transaction is refused instead of running outside it."""
    async with db.transaction() as tx:
        pass
    with pytest.raises(RuntimeError, match="transaction has ended"):
        await tx.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')")


async def test_other_tasks_never_write_inside_an_open_transaction(db: Database) -> None:
    """A write from another task during a transaction survives that transaction's rollback."""
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'first')")
            entered.set()
            await release.wait()
            raise RuntimeError("undo")

    holder = asyncio.create_task(hold())
    await entered.wait()
    writer = asyncio.create_task(db.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T2', 'other')"))
    for _ in range(5):
        await asyncio.sleep(0)  # scheduling steps, not time: the writer reaches its wait (or finishes)
    release.set()
    with pytest.raises(RuntimeError, match="undo"):
        await holder
    await writer
    assert await db.fetch_all("SELECT team_id FROM teams") == [{"team_id": "T2"}]


async def test_engine_and_ping_say_what_answers(db: Database, db_target: DbTarget) -> None:
    """`engine` names the engine; ping() is True while open and False once closed."""
    assert db.engine == db_target.engine
    assert await db.ping() is True
    await db.close()
    assert await db.ping() is False


async def test_close_is_idempotent_and_later_calls_fail_clearly(db_target: DbTarget) -> None:
    """close() twice is fine; a statement after close raises DatabaseClosedError."""
    db = await db_target.open()
    await db.close()
    await db.close()
    assert db.closed
    with pytest.raises(DatabaseClosedError):
        await db.fetch_all("SELECT 1 AS one")
    with pytest.raises(DatabaseClosedError):
        async with db.transaction():
            pass


async def test_every_table_exists_after_open(db: Database) -> None:
    """Opening migrates: every table is there and every migration is recorded once."""
    assert await applied_migrations(db) == [m.name for m in MIGRATIONS]
    for table in TABLES:
        assert await db.fetch_all(f"SELECT * FROM {table}") == []  # noqa: S608


# ── SQLite only ──────────────────────────────────────────────────────────────────────────────────────


async def test_open_creates_the_folder_and_every_table(tmp_path: Path) -> None:
    """Opening a path in a missing folder creates the folder, the file and all tables."""
    db = await Database.connect(tmp_path / "nested" / "deeper" / "bot.db")
    try:
        names = await db.run(lambda d: set(d.table_names()))
        assert names >= TABLES
        assert (tmp_path / "nested" / "deeper" / "bot.db").is_file()
    finally:
        await db.close()


async def test_wal_mode_and_pragmas_are_on(file_db: Database) -> None:
    """The file is in WAL mode with a busy timeout, NORMAL sync and foreign keys."""

    def pragmas(d: sqlite_utils.Database) -> tuple[str, int, int, int]:
        return (
            d.execute("PRAGMA journal_mode").fetchone()[0],
            d.execute("PRAGMA busy_timeout").fetchone()[0],
            d.execute("PRAGMA synchronous").fetchone()[0],
            d.execute("PRAGMA foreign_keys").fetchone()[0],
        )

    assert await file_db.run(pragmas) == ("wal", 5000, 1, 1)


async def test_storage_calls_do_not_run_on_the_event_loop_thread(file_db: Database) -> None:
    """Every call runs on the same dedicated thread, never the loop's."""
    loop_thread = threading.get_ident()
    idents = await asyncio.gather(*(file_db.run(lambda d: threading.get_ident()) for _ in range(20)))
    assert loop_thread not in idents
    assert len(set(idents)) == 1


async def test_connection_belongs_to_the_writer_thread(file_db: Database) -> None:
    """The sqlite3 connection was made on the writer thread (check_same_thread guards it)."""
    conn = await file_db.run(lambda d: d.conn)
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")


async def test_the_database_itself_is_refused_inside_a_transaction(file_db: Database) -> None:
    """A call on the database inside its own open transaction raises instead of waiting forever."""
    async with file_db.transaction():
        with pytest.raises(RuntimeError, match="through `tx`"):
            await file_db.fetch_all("SELECT 1 AS one")


async def test_memory_database_works_without_a_key_file(tmp_path: Path) -> None:
    """`:memory:` opens, migrates and encrypts with a throwaway key."""
    db = await Database.connect(":memory:")
    try:
        assert await db.run(lambda d: set(d.table_names())) >= TABLES
        assert db.box.decrypt(db.box.encrypt("x")) == "x"
    finally:
        await db.close()


async def test_run_after_close_fails_clearly(tmp_path: Path) -> None:
    """run() after close raises DatabaseClosedError."""
    db = await Database.connect(tmp_path / "bot.db")
    await db.close()
    with pytest.raises(DatabaseClosedError):
        await db.run(lambda d: 1)


async def test_close_checkpoints_the_wal_into_the_file(tmp_path: Path) -> None:
    """After close the WAL is empty and the data is readable from the main file alone."""
    path = tmp_path / "bot.db"
    db = await Database.connect(path)
    await db.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')")
    assert Path(f"{path}-wal").stat().st_size > 0
    await db.close()
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT team_id FROM teams").fetchall() == [("T1",)]
    finally:
        conn.close()


async def test_a_failing_function_leaves_no_transaction_open(file_db: Database) -> None:
    """An exception inside immediate() rolls back, and the next write still commits."""

    def fail(d: sqlite_utils.Database) -> None:
        with immediate(d):
            d.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await file_db.run(fail)
    assert await _count_teams(file_db) == 0
    assert await file_db.run(lambda d: d.conn.in_transaction) is False


async def test_a_function_that_forgets_to_commit_is_rolled_back(file_db: Database) -> None:
    """A half-done transaction is undone instead of swallowing every later write."""

    def forget(d: sqlite_utils.Database) -> None:
        d.conn.execute("BEGIN")
        d.conn.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')")

    await file_db.run(forget)
    assert await _count_teams(file_db) == 0


@pytest.mark.postgres
async def test_postgres_has_no_sqlite_utils_run(postgres_schema: str) -> None:
    """run() on PostgreSQL says what to use instead rather than pretending."""
    db = await DbTarget("postgresql", postgres_schema).open()
    try:
        with pytest.raises(NotImplementedError, match="use fetch_all"):
            await db.run(lambda d: 1)
    finally:
        await db.close()


async def test_repr_names_the_place_and_state(db_target: DbTarget) -> None:
    """repr() is short, useful in logs, and never shows a password."""
    db = await db_target.open()
    shown = "bot.db" if db_target.engine == "sqlite" else "postgresql://"
    assert shown in repr(db) and "open" in repr(db)
    await db.close()
    assert "closed" in repr(db)

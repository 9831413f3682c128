"""The database: WAL, migrations, and one writer thread that keeps SQLite off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlite_utils

from storage.db import Database, DatabaseClosedError, immediate
from storage.migrations import migrations

TABLES = {"accounts", "audit", "outbox", "teams"}


@pytest.fixture
async def file_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database.open(tmp_path / "data" / "bot.db")
    yield db
    await db.close()


def _applied(db: sqlite_utils.Database) -> list[str]:
    return [m.name for m in migrations.applied(db)]


async def test_open_creates_the_folder_and_every_table(tmp_path: Path) -> None:
    """Opening a path in a missing folder creates the folder, the file and all tables."""
    db = await Database.open(tmp_path / "nested" / "deeper" / "bot.db")
    try:
        names = await db.run(lambda d: set(d.table_names()))
        assert names >= TABLES
        assert (tmp_path / "nested" / "deeper" / "bot.db").is_file()
    finally:
        await db.close()


async def test_migrations_are_idempotent_on_reopen(tmp_path: Path) -> None:
    """Reopening applies nothing twice and keeps the data."""
    path = tmp_path / "bot.db"
    db = await Database.open(path)
    first = await db.run(_applied)
    await db.run(lambda d: d.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')"))
    await db.close()
    db = await Database.open(path)
    try:
        assert await db.run(_applied) == first
        assert len(first) == len(set(first)) >= 4
        assert await db.run(lambda d: d.execute("SELECT count(*) FROM teams").fetchone()[0]) == 1
        assert await db.run(lambda d: migrations.pending(d)) == []
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


async def test_memory_database_works_without_a_key_file(tmp_path: Path) -> None:
    """`:memory:` opens, migrates and encrypts with a throwaway key."""
    db = await Database.open(":memory:")
    try:
        assert await db.run(lambda d: set(d.table_names())) >= TABLES
        assert db.box.decrypt(db.box.encrypt("x")) == "x"
    finally:
        await db.close()


async def test_close_is_idempotent_and_later_calls_fail_clearly(tmp_path: Path) -> None:
    """close() twice is fine; run() after close raises DatabaseClosedError."""
    db = await Database.open(tmp_path / "bot.db")
    await db.close()
    await db.close()
    with pytest.raises(DatabaseClosedError):
        await db.run(lambda d: 1)


async def test_close_checkpoints_the_wal_into_the_file(tmp_path: Path) -> None:
    """After close the WAL is empty and the data is readable from the main file alone."""
    path = tmp_path / "bot.db"
    db = await Database.open(path)
    await db.run(lambda d: d.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')"))
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
    assert await file_db.run(lambda d: d.execute("SELECT count(*) FROM teams").fetchone()[0]) == 0
    assert await file_db.run(lambda d: d.conn.in_transaction) is False


async def test_a_function_that_forgets_to_commit_is_rolled_back(file_db: Database) -> None:
    """A half-done transaction is undone instead of swallowing every later write."""

    def forget(d: sqlite_utils.Database) -> None:
        d.conn.execute("BEGIN")
        d.conn.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')")

    await file_db.run(forget)
    assert await file_db.run(lambda d: d.execute("SELECT count(*) FROM teams").fetchone()[0]) == 0


async def test_two_replicas_can_create_the_same_new_file_at_once(tmp_path: Path) -> None:
    """Two Database instances opening a fresh file together both succeed; migrations apply once."""
    path = tmp_path / "shared" / "bot.db"
    a, b = await asyncio.gather(Database.open(path), Database.open(path))
    try:
        applied = await a.run(_applied)
        assert applied == await b.run(_applied)
        assert len(applied) == len(set(applied))
        assert a.box.decrypt(b.box.encrypt("same key")) == "same key"
    finally:
        await a.close()
        await b.close()


def test_replicas_in_threads_can_create_the_same_new_file_at_once(tmp_path: Path) -> None:
    """Eight threads, each with its own loop, open one fresh file together without errors."""
    path = tmp_path / "bot.db"
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    async def open_and_close() -> None:
        db = await Database.open(path)
        await db.close()

    def worker() -> None:
        barrier.wait()
        try:
            asyncio.run(open_and_close())
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


async def test_repr_names_the_path_and_state(tmp_path: Path) -> None:
    """repr() is short and useful in logs."""
    db = await Database.open(tmp_path / "bot.db")
    assert "bot.db" in repr(db) and "open" in repr(db)
    await db.close()
    assert "closed" in repr(db)

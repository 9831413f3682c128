"""Numbered migrations on both engines: applied once, under a lock, and adopting sqlite-utils' record."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from storage_fixtures import DbTarget, errors_in_threads, eventually, old_sqlite_utils_file

from storage.db import Database
from storage.migrations import MIGRATIONS, applied_migrations

ALL = [migration.name for migration in MIGRATIONS]
# What PostgreSQL shows in pg_locks for `tx.lock("schema_migrations")`, the migrations lock.
_WAITING_FOR_MIGRATIONS = (
    "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND ((classid::bigint << 32) | objid::bigint) "
    "= hashtextextended(current_schema() || ':schema_migrations', 0)"
)


async def test_reopening_applies_nothing_twice_and_keeps_the_data(db_target: DbTarget) -> None:
    """The second open finds every migration recorded and leaves the rows alone."""
    db = await db_target.open()
    await db.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')")
    first = await db.fetch_all("SELECT name, applied_at FROM schema_migrations ORDER BY name")
    await db.close()
    db = await db_target.open()
    try:
        assert await db.fetch_all("SELECT name, applied_at FROM schema_migrations ORDER BY name") == first
        assert [row["name"] for row in first] == ALL
        assert await db.fetch_all("SELECT team_id FROM teams") == [{"team_id": "T1"}]
    finally:
        await db.close()


async def test_default_region_is_gone_from_teams(db: Database) -> None:
    """0005 dropped the unused teams.default_region."""
    await db.execute("INSERT INTO teams (team_id, updated_at) VALUES ('T1', 'now')")
    (team,) = await db.fetch_all("SELECT * FROM teams")
    assert set(team) == {"team_id", "log_channel_id", "updated_by", "updated_at"}


async def test_replicas_starting_together_migrate_once(db_target: DbTarget) -> None:
    """Three replicas open a fresh database at once: all start, each migration is recorded once."""
    opened = await asyncio.gather(*(db_target.open() for _ in range(3)))
    try:
        names = await opened[0].fetch_all("SELECT name FROM schema_migrations")
        assert sorted(row["name"] for row in names) == ALL
        for db in opened:
            assert await applied_migrations(db) == ALL
    finally:
        for db in opened:
            await db.close()


def test_replicas_in_threads_can_start_on_one_new_database_at_once(db_target: DbTarget) -> None:
    """Eight threads, each with its own loop, open one fresh database together without errors."""
    barrier = threading.Barrier(8)

    async def open_and_close() -> None:
        barrier.wait()
        db = await db_target.open()
        await db.close()

    assert errors_in_threads(8, open_and_close) == []


@pytest.mark.postgres
async def test_a_second_replica_waits_for_the_migrations_lock(postgres_schema: str) -> None:
    """PostgreSQL: while one replica holds the migrations lock, another's start waits, then goes on."""
    target = DbTarget("postgresql", postgres_schema)
    first, watcher = await target.open(), await target.open()
    try:
        async with first.transaction() as tx:
            await tx.lock("schema_migrations")
            second_start = asyncio.create_task(target.open())

            async def second_is_waiting() -> bool:
                row = await watcher.fetch_one(_WAITING_FOR_MIGRATIONS)
                return row is not None and int(row["n"]) == 1

            await eventually(second_is_waiting, what="the second replica to wait for the lock")
            assert not second_start.done()
        second = await second_start
        assert await applied_migrations(second) == ALL
        await second.close()
    finally:
        await first.close()
        await watcher.close()


async def test_an_old_sqlite_utils_file_upgrades_without_rerunning_anything(tmp_path: Path) -> None:
    """A file migrated by sqlite-utils keeps its data; only 0005 and later run; the old record is adopted."""
    path = tmp_path / "bot.db"
    old_sqlite_utils_file(path)
    old_record = sqlite3.connect(path).execute("SELECT name, applied_at FROM _sqlite_migrations").fetchall()
    db = await Database.connect(path)
    try:
        recorded = await db.fetch_all("SELECT name, applied_at FROM schema_migrations ORDER BY name")
        assert [row["name"] for row in recorded] == ALL
        assert [(row["name"], row["applied_at"]) for row in recorded[:4]] == sorted(old_record)
        assert await db.fetch_all("SELECT * FROM teams") == [
            {
                "team_id": "T1",
                "log_channel_id": "C1",
                "updated_by": None,
                "updated_at": "2025-01-01T00:00:00+00:00",
            }
        ]
        # Rows from before leases have none: start-up recovery handles them, as before.
        assert await db.fetch_all("SELECT key, owner, lease_until FROM outbox") == [
            {"key": "k1", "owner": None, "lease_until": None}
        ]
    finally:
        await db.close()
    db = await Database.connect(path)
    try:
        assert await applied_migrations(db) == ALL
    finally:
        await db.close()

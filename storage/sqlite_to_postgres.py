"""Copy a SQLite database into an empty PostgreSQL one, every table, secrets still encrypted.

The source file is not changed: a consistent snapshot of it (SQLite's backup API, safe while the bot
runs) is migrated to the current schema in a temporary folder and read from there. The target is
migrated too, then filled in one transaction that checks, under a lock, that it is still empty and
ends by comparing row counts per table. Nothing is decrypted: the bot on PostgreSQL needs the same
SECRET_KEY (or the key in the old `secret.key` file) to read the accounts.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

from storage.db import Database, KeySetting, Queries, is_postgres_url
from storage.sqlite import SQLiteDatabase

__all__ = ["CopyError", "copy_sqlite_to_postgres"]

_BATCH = 500
# Our own bookkeeping, and SQLite's, are not data.
_NOT_DATA = {"schema_migrations", "_sqlite_migrations"}
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class CopyError(Exception):
    """The copy was refused or did not check out; the message says why and nothing was written."""


async def copy_sqlite_to_postgres(sqlite_path: str | Path, url: str) -> dict[str, int]:
    """Copy every table of the SQLite database at `sqlite_path` into the PostgreSQL at `url`; rows per table.

    Raises `CopyError` with a sentence when the source is missing, the target already holds data,
    or the counts differ afterwards (then nothing was committed), and `DatabaseUnavailable` when
    PostgreSQL does not answer.
    """
    source_path = Path(sqlite_path)
    if not is_postgres_url(url):
        raise CopyError("The target must be a postgresql:// URL (the DATABASE_URL the bot will use).")
    # Neither side decrypts anything, so a throwaway key keeps the key files out of it.
    throwaway = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory(prefix="bot-copy-") as folder:
        snapshot = Path(folder) / "snapshot.db"
        await asyncio.to_thread(_snapshot, source_path, snapshot)
        # The reads below are SQLite's own (rowid, sqlite_master), so open the snapshot as SQLite by name.
        source = await SQLiteDatabase.open_file(snapshot, KeySetting(secret_keys=throwaway))
        try:
            target = await Database.connect(url, secret_keys=throwaway, pool_size=1, statement_timeout=300)
            try:
                return await _copy(source, target)
            finally:
                await target.close()
        finally:
            await source.close()


def _snapshot(source: Path, copy: Path) -> None:
    """A consistent copy of `source` (read-only; WAL included) at `copy`."""
    if not source.is_file():
        raise CopyError(f"There is no SQLite database at {source}; give the path of the bot's bot.db.")
    try:
        reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise CopyError(f"Cannot open the SQLite database {source} ({err}).") from None
    writer = sqlite3.connect(copy)
    try:
        reader.backup(writer)
    except sqlite3.DatabaseError as err:
        raise CopyError(f"Cannot read the SQLite database {source} ({err}); is it a bot database?") from None
    finally:
        writer.close()
        reader.close()


async def _tables(db: Queries) -> list[str]:
    if db.engine == "sqlite":
        rows = await db.fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    else:
        rows = await db.fetch_all(
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
    names = [str(row["name"]) for row in rows if row["name"] not in _NOT_DATA]
    odd = [name for name in names if not _NAME.match(name)]
    if odd:
        raise CopyError(f"Unexpected table names {odd}: this does not look like the bot's database.")
    return names


async def _count(db: Queries, table: str) -> int:
    # The table name is checked against _NAME above; identifiers cannot be bound as parameters.
    row = await db.fetch_one(f"SELECT count(*) AS n FROM {table}")  # noqa: S608
    assert row is not None
    return int(row["n"])


async def _copy(source: Database, target: Database) -> dict[str, int]:
    tables = await _tables(source)
    missing = sorted(set(tables) - set(await _tables(target)))
    if missing:
        raise CopyError(
            f"The PostgreSQL database has no table {', '.join(missing)}; the SQLite file is from a newer "
            "bot than this one. Upgrade the bot, then copy."
        )
    counts: dict[str, int] = {}
    async with target.transaction(statement_timeout=300) as tx:
        await tx.lock("sqlite-to-postgres")
        filled = {table: n for table in tables if (n := await _count(tx, table))}
        if filled:
            held = ", ".join(f"{table}: {n} rows" for table, n in sorted(filled.items()))
            raise CopyError(
                f"The PostgreSQL database already holds data ({held}); copy only into an empty database."
            )
        for table in tables:
            counts[table] = await _copy_table(source, tx, table)
            if counts[table] and await _has_identity(tx, table):
                # Rows came with their ids; the next id the database hands out must follow them.
                await tx.fetch_one(
                    f"SELECT setval(pg_get_serial_sequence(?, 'id'), max(id)) AS id FROM {table}",  # noqa: S608
                    [table],
                )
        copied = {table: await _count(tx, table) for table in tables}
        if copied != counts:
            differ = ", ".join(
                f"{table}: {counts[table]} read, {copied[table]} written"
                for table in tables
                if counts[table] != copied[table]
            )
            raise CopyError(f"The row counts do not match ({differ}); nothing was copied.")
    return counts


async def _columns(db: Queries, table: str) -> list[str]:
    if db.engine == "sqlite":
        rows = await db.fetch_all("SELECT name FROM pragma_table_info(?) ORDER BY cid", [table])
    else:
        rows = await db.fetch_all(
            "SELECT column_name AS name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            [table],
        )
    return [str(row["name"]) for row in rows]


async def _has_identity(db: Queries, table: str) -> bool:
    row = await db.fetch_one(
        "SELECT 1 AS found FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? AND column_name = 'id' AND is_identity = 'YES'",
        [table],
    )
    return row is not None


async def _copy_table(source: Database, tx: Queries, table: str) -> int:
    """Copy one table in batches, in rowid order; how many rows were read."""
    columns = await _columns(source, table)
    if columns != await _columns(tx, table) or not all(_NAME.match(column) for column in columns):
        raise CopyError(
            f"The table {table} has different columns in SQLite and PostgreSQL; "
            "run the same bot version against both before copying."
        )
    names = ", ".join(columns)
    # Checked names only (see _NAME); values always go as parameters.
    select = f"SELECT rowid AS rowid_, {names} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?"  # noqa: S608
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"  # noqa: S608
    read, after = 0, -1
    while True:
        rows = await source.fetch_all(select, [after, _BATCH])
        if not rows:
            return read
        await tx.execute_many(insert, [[row[column] for column in columns] for row in rows])
        read += len(rows)
        after = int(rows[-1]["rowid_"])

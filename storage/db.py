"""The database the repositories talk to, on either engine: SQLite (the default) or PostgreSQL.

Repositories see only this small interface: `fetch_all`, `fetch_one`, `execute` and `execute_many`
on the database or on a transaction (`async with db.transaction() as tx:`), in the one SQL dialect of
`storage.sql`. `storage.sqlite` runs it on one writer thread over sqlite-utils; `storage.postgres` on
a psycopg connection pool. Both apply `storage.migrations` on open. See docs/storage.md.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from storage.crypto import SecretBox

if TYPE_CHECKING:
    import sqlite_utils

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_STATEMENT_TIMEOUT",
    "Database",
    "DatabaseClosedError",
    "DatabaseUnavailable",
    "Engine",
    "KeySetting",
    "Params",
    "PoolSetting",
    "Queries",
    "Row",
    "Transaction",
    "is_postgres_url",
    "utc_now",
]

T = TypeVar("T")
Engine = Literal["sqlite", "postgresql"]
Row = dict[str, Any]
Params = Sequence[Any] | Mapping[str, Any]

DEFAULT_POOL_SIZE = 10
DEFAULT_STATEMENT_TIMEOUT = 5.0
PING_TIMEOUT = 2.0


class DatabaseClosedError(RuntimeError):
    """The database was used after `close()`."""


class DatabaseUnavailable(Exception):
    """The database did not answer (unreachable, restarting, or a statement ran out of time).

    Whatever the failed call was writing was not committed. `str()` is the sentence for the user;
    `detail` is the driver's reason, for logs (it never holds a password).
    """

    SENTENCE = "The bot's database is not answering; nothing was sent."

    def __init__(self, message: str | None = None, *, detail: str = "") -> None:
        super().__init__(message or self.SENTENCE)
        self.detail = detail


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string with microseconds; sorts as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def iso(moment: datetime) -> str:
    """An aware datetime in the stored form of `utc_now()`; a naive one raises ValueError."""
    if moment.tzinfo is None:
        raise ValueError("A stored time must carry its time zone (use an aware datetime, UTC).")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def is_postgres_url(target: str | Path) -> bool:
    """True for a `postgresql://` or `postgres://` URL; anything else is a SQLite path."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class Queries(abc.ABC):
    """The statements a repository can run, on a database or inside one of its transactions."""

    engine: Engine

    @abc.abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a statement that returns rows (a SELECT, or a write with RETURNING); all of them."""

    @abc.abstractmethod
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """Run a statement that returns rows; the first one, or None."""

    @abc.abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement that returns no rows; how many rows it changed (-1 when not counted)."""

    @abc.abstractmethod
    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement once per parameter set (bulk inserts)."""


class Transaction(Queries):
    """Statements that commit together when the `async with db.transaction()` block ends, or not at all."""

    @abc.abstractmethod
    async def lock(self, name: str) -> None:
        """Hold an exclusive lock called `name` until the transaction ends.

        It serialises read-modify-writes on one thing (a team's accounts, the migrations) across
        replicas. On PostgreSQL it is an advisory lock; SQLite's immediate transaction already holds
        the database's only write lock, so there it costs nothing.
        """


@dataclass(frozen=True)
class KeySetting:
    """Where the key that seals the stored secrets comes from: `secret_keys` (the SECRET_KEY setting,
    comma-separated Fernet keys, newest first), else `key_file`. `repr()` never shows the keys."""

    secret_keys: str | None = field(default=None, repr=False)
    key_file: Path | None = None


@dataclass(frozen=True)
class PoolSetting:
    """PostgreSQL's pool: how many connections, and how long a statement and a new connection may take."""

    size: int = DEFAULT_POOL_SIZE
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
    connect_timeout: float = 5.0


class Database(Queries):
    """An open database on either engine. `box` encrypts and decrypts the stored Twilio secrets.

    Open one with `await Database.connect(url_or_path)` (PostgreSQL for a `postgresql://` URL, else
    SQLite); finish with `await db.close()`.
    """

    box: SecretBox
    _closed: bool

    @classmethod
    async def connect(
        cls,
        target: str | Path,
        *,
        secret_keys: str | None = None,
        key_file: Path | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        connect_timeout: float = 5.0,
    ) -> Database:
        """Open PostgreSQL for a `postgresql://` URL (DATABASE_URL), else SQLite at the path, and migrate.

        `secret_keys` is the SECRET_KEY setting (comma-separated Fernet keys, newest first).
        Raises `storage.crypto.KeyConfigError` for an unusable key setting.

        SQLite: the file (or `":memory:"`) is created if needed. Without `secret_keys` the key is
        read from `key_file` (default: `secret.key` beside the database), which is generated once
        with mode 0600 when missing; an in-memory database without keys gets a throwaway key. The
        pool settings do not apply.

        PostgreSQL: the pool holds `pool_size` connections (DATABASE_POOL_SIZE), every statement
        is cancelled after `statement_timeout` seconds, and the secret key must be given
        (`secret_keys`, or an explicit `key_file`): every replica must encrypt with the same one.
        Raises `DatabaseUnavailable` when the server does not answer within `connect_timeout`.
        """
        keys = KeySetting(secret_keys, key_file)
        if not is_postgres_url(target):
            from storage.sqlite import SQLiteDatabase

            return await SQLiteDatabase.open_file(target, keys)
        from storage.postgres import PostgresDatabase

        pool = PoolSetting(pool_size, statement_timeout, connect_timeout)
        return await PostgresDatabase.open_url(str(target), keys, pool)

    @property
    def closed(self) -> bool:
        """True once `close()` has started."""
        return self._closed

    async def _migrate_or_close(self) -> None:
        """Bring a database just opened to the newest schema; close it again if that fails."""
        from storage.migrations import apply_migrations

        try:
            await apply_migrations(self)
        except BaseException:
            await self.close()
            raise

    @abc.abstractmethod
    def transaction(
        self, *, statement_timeout: float | None = None
    ) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """`async with db.transaction() as tx:` runs tx's statements as one transaction.

        SQLite begins it IMMEDIATE (the write lock is taken before the first read); PostgreSQL runs
        it READ COMMITTED, so read-modify-writes take `tx.lock(name)` or a row lock first.
        `statement_timeout` replaces the usual one inside it (PostgreSQL; for long waits such as
        migrations). Do not call the database itself inside the block: use `tx`.
        """

    async def write_batches(self, batches: Sequence[tuple[str, Sequence[Params]]]) -> None:
        """Run each statement once per parameter set, all in one transaction (a group commit).

        SQLite does it in one job on its writer thread; any failure rolls the whole batch back.
        """
        async with self.transaction() as tx:
            for sql, rows in batches:
                if rows:
                    await tx.execute_many(sql, rows)

    def start_batches(
        self,
        batches: Sequence[tuple[str, Sequence[Params]]],
        on_done: Callable[[BaseException | None], None],
    ) -> None:
        """Start `write_batches` now and call `on_done(error or None)` on the event loop when it ends.

        Not a coroutine, so a group commit can start from a callback; SQLite hands the job straight to
        its writer thread, and `on_done` runs in the loop's next turn after the commit.
        """
        task = asyncio.ensure_future(self.write_batches(batches))

        def report(done: asyncio.Future[None]) -> None:
            on_done(asyncio.CancelledError() if done.cancelled() else done.exception())

        task.add_done_callback(report)

    async def ping(self, within: float = PING_TIMEOUT) -> bool:
        """Whether the database answers a trivial query within `within` seconds (for /healthz)."""
        try:
            await asyncio.wait_for(self.fetch_one("SELECT 1 AS ok"), within)
        except Exception:  # any failure is the answer "no"; the caller only reports it
            return False
        return True

    async def run(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """SQLite only: run `fn` with the sqlite-utils database on the writer thread.

        Kept for callers written before PostgreSQL existed; new code uses the statements above.
        """
        raise NotImplementedError(
            f"Database.run hands out a sqlite-utils connection, which the {self.engine} engine does not "
            "have; use fetch_all, fetch_one, execute or transaction instead."
        )

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection(s). Safe to call more than once."""

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

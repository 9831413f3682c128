"""The PostgreSQL engine: psycopg 3 on an `AsyncConnectionPool` (why psycopg: docs/storage.md).

Connections run in autocommit, so a lone statement commits by itself and `transaction()` opens a
real one. Every connection gets a statement timeout when it joins the pool, and the pool checks a
connection before handing it out, so after a server restart broken ones are replaced rather than
failing the next statement. A call that cannot reach the server raises `DatabaseUnavailable`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from storage.crypto import KeyConfigError, SecretBox
from storage.db import (
    PING_TIMEOUT,
    Database,
    DatabaseClosedError,
    DatabaseUnavailable,
    Engine,
    KeySetting,
    Params,
    PoolSetting,
    Row,
    Transaction,
)
from storage.sql import for_postgres

__all__ = ["PostgresDatabase", "redact_url"]

Connection = psycopg.AsyncConnection[DictRow]
# A transaction left open by a stuck replica must not hold its row locks forever.
IDLE_IN_TRANSACTION_TIMEOUT = 60.0
# How long a statement may queue for a pooled connection while the server keeps answering others (a
# burst): longer than the pool's own timeout, which alone would call a busy pool an outage.
BUSY_POOL_WAIT = 60.0
# How long one wait for a pooled connection lasts before the wait checks whether the server is down.
CHECKOUT_TURN = 0.5
# The key of `tx.lock(name)`: per schema, so two deployments sharing one database do not block each other.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || %s, 0))"


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _reason(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


@contextlib.contextmanager
def _answering() -> Iterator[None]:
    """Turn the driver's "cannot reach / gave up" errors into `DatabaseUnavailable`."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as err:
        # OperationalError covers a refused or dropped connection, a server shutting down, the pool
        # timing out and a statement cancelled by its timeout: in each, nothing was committed.
        raise DatabaseUnavailable(detail=_reason(err)) from err


def _milliseconds(seconds: float) -> str:
    return str(max(1, math.ceil(seconds * 1000)))


async def _fetch(conn: Connection, sql: str, params: Params, one: bool) -> list[Row]:
    async with conn.cursor() as cursor:
        await cursor.execute(for_postgres(sql), params)
        if one:
            row = await cursor.fetchone()
            return [] if row is None else [row]
        return await cursor.fetchall()


async def _execute(conn: Connection, sql: str, params: Params) -> int:
    async with conn.cursor() as cursor:
        await cursor.execute(for_postgres(sql), params)
        return cursor.rowcount


async def _execute_many(conn: Connection, sql: str, rows: Sequence[Params]) -> None:
    async with conn.cursor() as cursor:
        await cursor.executemany(for_postgres(sql), rows)


class _PostgresTransaction(Transaction):
    """Statements on the one pooled connection that holds the open transaction."""

    engine: Engine = "postgresql"

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.done = False

    def _open(self) -> Connection:
        if self.done:
            raise RuntimeError("This transaction has ended; open a new one with db.transaction().")
        return self._conn

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        with _answering():
            return await _fetch(self._open(), sql, params, one=False)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        with _answering():
            rows = await _fetch(self._open(), sql, params, one=True)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        with _answering():
            return await _execute(self._open(), sql, params)

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        with _answering():
            await _execute_many(self._open(), sql, rows)

    async def lock(self, name: str) -> None:
        with _answering():
            await self._open().execute(_LOCK, [name])


class PostgresDatabase(Database):
    """PostgreSQL through a fixed-size psycopg connection pool."""

    engine: Engine = "postgresql"

    def __init__(
        self,
        pool: AsyncConnectionPool[Connection],
        box: SecretBox,
        url: str,
        checkout_timeout: float = 5.0,
        *,
        urgent: AsyncConnectionPool[Connection] | None = None,
    ) -> None:
        """Use `Database.connect`; this only stores what it prepared."""
        self.box = box
        self.url = redact_url(url)
        self._pool = pool
        self._urgent = urgent
        self._checkout_timeout = checkout_timeout
        self._closed = False
        self._answered = 0.0  # monotonic time of the last statement the server answered

    @classmethod
    async def open_url(cls, url: str, keys: KeySetting, setting: PoolSetting) -> PostgresDatabase:
        """See `Database.connect`."""
        pool_size, statement_timeout = setting.size, setting.statement_timeout
        connect_timeout = setting.connect_timeout
        if pool_size < 1:
            raise ValueError(f"The database pool needs at least one connection, not {pool_size}.")
        if statement_timeout <= 0:
            raise ValueError("The statement timeout must be a positive number of seconds.")
        box = _box(keys)
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": max(2, math.ceil(connect_timeout)),
        }
        # One plain connection first: when it fails, libpq says why (refused, no such database, bad
        # password), where a pool would only report that it timed out.
        try:
            probe = await psycopg.AsyncConnection.connect(url, **kwargs)
        except psycopg.Error as err:
            raise DatabaseUnavailable(
                f"Cannot connect to the PostgreSQL database at {redact_url(url)} ({_reason(err)}); "
                "check DATABASE_URL and that the server is running.",
                detail=_reason(err),
            ) from None
        await probe.close()

        async def configure(conn: Connection) -> None:
            await conn.execute(
                "SELECT set_config('statement_timeout', %s, false), "
                "set_config('idle_in_transaction_session_timeout', %s, false)",
                [_milliseconds(statement_timeout), _milliseconds(IDLE_IN_TRANSACTION_TIMEOUT)],
            )

        def new_pool(size: int, name: str) -> AsyncConnectionPool[Connection]:
            return AsyncConnectionPool(
                url,
                connection_class=Connection,
                kwargs=kwargs,
                min_size=size,
                max_size=size,
                open=False,
                configure=configure,
                # Checked on checkout: a connection the server dropped (restart, failover) is replaced.
                check=AsyncConnectionPool.check_connection,
                timeout=connect_timeout,
                # Give up a failing slot soon; the next request that finds the pool short makes a new one.
                reconnect_timeout=max(10.0, 2 * connect_timeout),
                name=name,
            )

        pool = new_pool(pool_size, "bot-database")
        # One connection of its own for the group commits written before an ack (`write_batches`), so
        # an ack never queues behind the background work holding every connection of the main pool.
        urgent = new_pool(1, "bot-database-acks")
        try:
            with _answering():
                await pool.open(wait=True, timeout=connect_timeout)
                await urgent.open(wait=True, timeout=connect_timeout)
        except BaseException:
            await pool.close()
            await urgent.close()
            raise
        database = cls(pool, box, url, connect_timeout, urgent=urgent)
        await database._migrate_or_close()
        return database

    def _usable(self) -> AsyncConnectionPool[Connection]:
        if self._closed:
            raise DatabaseClosedError("The database is closed.")
        return self._pool

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        """`_answering()`, noting when the server last answered (for `ping`) and forgetting it on failure."""
        try:
            with _answering():
                yield
        except DatabaseUnavailable:
            self._answered = 0.0
            raise
        self._answered = time.monotonic()

    @contextlib.asynccontextmanager
    async def _connection(
        self, pool: AsyncConnectionPool[Connection] | None = None
    ) -> AsyncIterator[Connection]:
        """A pooled connection. While every one is busy but the server keeps answering (a burst), wait
        in line up to BUSY_POOL_WAIT; when it has not answered lately (or a statement just failed), give
        up after one checkout timeout (PoolTimeout, an outage)."""
        usable = self._usable()
        pool = pool or usable
        started = time.monotonic()
        failures = _failures(pool)
        while True:
            try:
                # Short turns, so an outage shows within one: the pool's reconnections fail at once.
                conn = await pool.getconn(timeout=min(CHECKOUT_TURN, self._checkout_timeout))
                break
            except PoolTimeout:
                if _failures(pool) != failures:
                    raise  # new connections cannot be made: the server is not answering
                # Busy, not down, while the server answered lately: a failed statement resets
                # `_answered`, and a hung server fails statements by their timeout.
                waited = time.monotonic() - started
                answering = time.monotonic() - self._answered < 3 * self._checkout_timeout
                if waited >= (BUSY_POOL_WAIT if answering else self._checkout_timeout):
                    raise
        try:
            yield conn
        finally:
            await pool.putconn(conn)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        with self._answering():
            async with self._connection() as conn:
                return await _fetch(conn, sql, params, one=False)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        with self._answering():
            async with self._connection() as conn:
                rows = await _fetch(conn, sql, params, one=True)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        with self._answering():
            async with self._connection() as conn:
                return await _execute(conn, sql, params)

    async def ping(self, within: float = PING_TIMEOUT) -> bool:
        """Whether the server answered a statement in the last `within` seconds, or answers one now.

        Under a burst every pooled connection is busy and a new query would queue behind the work;
        a statement that just succeeded already says the database answers, so /healthz stays 200.
        """
        if not self._closed and time.monotonic() - self._answered < within:
            return True
        return await super().ping(within)

    async def write_batches(self, batches: Sequence[tuple[str, Sequence[Params]]]) -> None:
        """`Database.write_batches` on the connection kept for the writes an ack waits for."""
        with self._answering():
            async with self._connection(self._urgent) as conn, conn.transaction():
                for sql, rows in batches:
                    if rows:
                        await _execute_many(conn, sql, rows)

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        with self._answering():
            async with self._connection() as conn, conn.transaction():
                await _execute_many(conn, sql, rows)

    @contextlib.asynccontextmanager
    async def transaction(self, *, statement_timeout: float | None = None) -> AsyncIterator[Transaction]:
        with self._answering():
            async with self._connection() as conn, conn.transaction():
                if statement_timeout is not None:
                    await conn.execute(
                        "SELECT set_config('statement_timeout', %s, true)", [_milliseconds(statement_timeout)]
                    )
                tx = _PostgresTransaction(conn)
                try:
                    yield tx
                finally:
                    tx.done = True

    async def close(self) -> None:
        """Close every pooled connection. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()
        if self._urgent is not None:
            await self._urgent.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Database {self.url} {state}>"


def _failures(pool: AsyncConnectionPool[Connection]) -> int:
    """Connections the pool tried to open and could not, so far. (Connections found broken are not
    counted: after a server restart they are replaced at once, which is no outage.)"""
    return pool.get_stats().get("connections_errors", 0)


def _box(keys: KeySetting) -> SecretBox:
    secret_keys, key_file = keys.secret_keys, keys.key_file
    if secret_keys is not None and secret_keys.strip():
        return SecretBox.from_keys(secret_keys, source="SECRET_KEY")
    if key_file is not None and Path(key_file).is_file():
        return SecretBox.from_setting(None, Path(key_file))
    raise KeyConfigError(
        "With PostgreSQL, set SECRET_KEY: every replica must encrypt with the same key, so none is "
        "generated beside the database. Moving from SQLite? Use the key in the secret.key file beside "
        "the old database."
    )

"""The SQLite engine: WAL mode, and one writer thread that does all SQLite work (through sqlite-utils).

Like datasette, nothing here touches SQLite on the event loop: every statement is a job for a single
dedicated thread that owns the connection (`storage.writer`). Jobs run in the order they are
submitted, so a transaction holds `_order` from BEGIN to COMMIT and nobody else's statement lands
inside it; the journal's group commits alone go first, because a Slack ack waits for them. Two bot
replicas may share one file; SQLite's locks, a busy timeout and `BEGIN IMMEDIATE` for every
read-modify-write keep them from stepping on each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from storage.crypto import SecretBox
from storage.db import Database, DatabaseClosedError, Engine, KeySetting, Params, Row, Transaction
from storage.sql import for_sqlite
from storage.writer import Writer

__all__ = ["BUSY_TIMEOUT_MS", "SQLiteDatabase", "immediate"]

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
MEMORY = ":memory:"

# The database whose transaction the current task is inside, to refuse a call that would wait on it.
_IN_TRANSACTION: contextvars.ContextVar[SQLiteDatabase | None] = contextvars.ContextVar(
    "sqlite_in_transaction", default=None
)


@contextlib.contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block in a `BEGIN IMMEDIATE` transaction: take the write lock before reading.

    For `Database.run` callers; repositories use `db.transaction()`. Commits on success and rolls
    back on any exception.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    try:
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise


def _enable_wal(conn: sqlite3.Connection, path: str) -> None:
    """Switch the file to WAL mode, waiting while another process does the same.

    Changing the journal mode needs an exclusive lock, and SQLite answers "database is locked" at
    once (without its busy handler) when two connections try together, so retry until the timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)  # a real lock wait on the writer thread, not the event loop
            delay = min(delay * 2, 0.1)
            continue
        if mode != "wal":
            raise sqlite3.OperationalError(f"could not switch {path} to WAL mode (got {mode!r})")
        return


def _connect(path: str) -> sqlite_utils.Database:
    """Open the connection (on the writer thread) and set the pragmas; migrations come after."""
    # No implicit transactions: a statement commits on its own unless BEGIN IMMEDIATE opened one,
    # as on PostgreSQL with autocommit.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db = sqlite_utils.Database(conn, execute_plugins=False)
        if path != MEMORY:
            _enable_wal(conn, path)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are zeroed in the file, so a forgotten workspace's encrypted tokens leave no copy.
        conn.execute("PRAGMA secure_delete=ON")
    except BaseException:
        conn.close()
        raise
    return db


def _fetch(conn: sqlite3.Connection, sql: str, params: Params, limit: int | None) -> list[Row]:
    cursor = conn.execute(for_sqlite(sql), params)
    try:
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
        return [dict(zip(names, row, strict=True)) for row in rows]
    finally:
        # Resetting the statement finishes a RETURNING write, so a COMMIT after it is allowed.
        cursor.close()


def _execute(conn: sqlite3.Connection, sql: str, params: Params) -> int:
    cursor = conn.execute(for_sqlite(sql), params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def _execute_many(conn: sqlite3.Connection, sql: str, rows: Sequence[Params]) -> None:
    conn.executemany(for_sqlite(sql), rows).close()


def _write_batches(conn: sqlite3.Connection, batches: Sequence[tuple[str, Sequence[Params]]]) -> None:
    work = [(sql, rows) for sql, rows in batches if rows]
    if len(work) == 1 and len(work[0][1]) == 1:
        # One statement is a transaction of its own. BEGIN and COMMIT would each wait for the GIL again
        # (up to 5 ms while the event loop is busy), and a group commit is waited for by every ack in it.
        sql, (params,) = work[0]
        conn.execute(for_sqlite(sql), params).close()
        return
    conn.execute("BEGIN IMMEDIATE").close()
    try:
        for sql, rows in batches:
            if rows:
                _execute_many(conn, sql, rows)
    except BaseException:
        _end(conn, commit=False)
        raise
    _end(conn, commit=True)


def _end(conn: sqlite3.Connection, *, commit: bool) -> None:
    if commit:
        try:
            conn.execute("COMMIT")
            return
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class _SQLiteTransaction(Transaction):
    """Statements inside one `BEGIN IMMEDIATE` transaction; the database's `_order` is held for it."""

    engine: Engine = "sqlite"

    def __init__(self, database: SQLiteDatabase, conn: sqlite3.Connection) -> None:
        self._database = database
        self._conn = conn
        self.done = False

    async def _call(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if self.done:
            raise RuntimeError("This transaction has ended; open a new one with db.transaction().")
        conn = self._conn
        return await self._database.on_thread(lambda: job(conn))

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._call(lambda conn: _fetch(conn, sql, params, None))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._call(lambda conn: _fetch(conn, sql, params, 1))
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._call(lambda conn: _execute(conn, sql, params))

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        await self._call(lambda conn: _execute_many(conn, sql, rows))

    async def lock(self, name: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the database's write lock."""
        if self.done:
            raise RuntimeError("This transaction has ended; open a new one with db.transaction().")


class SQLiteDatabase(Database):
    """An open SQLite database whose every call runs on one dedicated writer thread."""

    engine: Engine = "sqlite"
    path: Path

    def __init__(self, path: Path, box: SecretBox, executor: Writer, sdb: sqlite_utils.Database):
        """Use `Database.connect`; this only stores what it prepared."""
        self.path = path
        self.box = box
        self._executor = executor
        self._db: sqlite_utils.Database | None = sdb
        self._closed = False
        self._close_lock = asyncio.Lock()
        # Held while a job is handed to the thread, and for a whole transaction: jobs run in the order
        # they were handed over, so this keeps other statements out of an open transaction.
        self._order = asyncio.Lock()

    @classmethod
    async def open_file(cls, path: Path | str, keys: KeySetting) -> SQLiteDatabase:
        """See `Database.connect`."""
        secret_keys, key_file = keys.secret_keys, keys.key_file
        memory = str(path) == MEMORY
        db_path = Path(path)
        executor = Writer()
        try:

            def prepare() -> tuple[SecretBox, sqlite_utils.Database]:
                if memory:
                    if secret_keys:
                        box = SecretBox.from_keys(secret_keys)
                    elif key_file is not None:
                        box = SecretBox.from_setting(None, key_file)
                    else:
                        box = SecretBox.generate()
                    return box, _connect(MEMORY)
                db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                box = SecretBox.from_setting(secret_keys, key_file or db_path.parent / "secret.key")
                return box, _connect(str(db_path))

            box, sdb = await asyncio.wrap_future(executor.submit(prepare))
        except BaseException:
            executor.shutdown()
            raise
        database = cls(db_path, box, executor, sdb)
        await database._migrate_or_close()
        return database

    def _connection(self) -> sqlite_utils.Database:
        if self._closed or self._db is None:
            raise DatabaseClosedError("The database is closed.")
        return self._db

    def _refuse_inside_transaction(self) -> None:
        # The statement would wait for the very transaction that waits for it.
        if _IN_TRANSACTION.get() is self:
            raise RuntimeError("A transaction is open in this task: run its statements through `tx`.")

    async def on_thread(self, job: Callable[[], T]) -> T:
        """Run `job` on the writer thread now, without waiting for `_order` (transactions use it)."""
        return await asyncio.wrap_future(self._executor.submit(job))

    async def _submit(self, job: Callable[[sqlite_utils.Database], T], *, urgent: bool = False) -> T:
        self._refuse_inside_transaction()
        async with self._order:
            sdb = self._connection()
            # Handed over under the order lock, so no transaction is open when an urgent job jumps ahead.
            future = asyncio.wrap_future(self._executor.submit(lambda: job(sdb), urgent=urgent))
        return await future

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._submit(lambda sdb: _fetch(sdb.conn, sql, params, None))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._submit(lambda sdb: _fetch(sdb.conn, sql, params, 1))
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._submit(lambda sdb: _execute(sdb.conn, sql, params))

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        await self._submit(lambda sdb: _execute_many(sdb.conn, sql, rows))

    async def write_batches(self, batches: Sequence[tuple[str, Sequence[Params]]]) -> None:
        # One hop to the writer thread for the whole transaction: the ack that waits for it pays once.
        # Urgent: Slack acks wait for these (the journal), not for the background work queued before.
        await self._submit(lambda sdb: _write_batches(sdb.conn, batches), urgent=True)

    def start_batches(
        self,
        batches: Sequence[tuple[str, Sequence[Params]]],
        on_done: Callable[[BaseException | None], None],
    ) -> None:
        if self._order.locked() or _IN_TRANSACTION.get() is self:
            super().start_batches(batches, on_done)  # a transaction is open: queue behind it
            return
        # Nobody holds the order lock, so no transaction is open: hand the job over at once, urgent, and
        # report straight from the writer thread's completion (one turn of the loop, not three).
        conn = self._connection().conn
        loop = asyncio.get_running_loop()
        future = self._executor.submit(lambda: _write_batches(conn, batches), urgent=True)
        future.add_done_callback(lambda done: loop.call_soon_threadsafe(on_done, done.exception()))

    @contextlib.asynccontextmanager
    async def transaction(self, *, statement_timeout: float | None = None) -> AsyncIterator[Transaction]:
        # `statement_timeout` is PostgreSQL's; SQLite's wait for the write lock is its busy timeout.
        self._refuse_inside_transaction()
        async with self._order:
            conn = self._connection().conn
            await self.on_thread(lambda: conn.execute("BEGIN IMMEDIATE").close())
            tx = _SQLiteTransaction(self, conn)
            token = _IN_TRANSACTION.set(self)
            try:
                yield tx
            except BaseException:
                tx.done = True
                await self.on_thread(lambda: _end(conn, commit=False))
                raise
            finally:
                _IN_TRANSACTION.reset(token)
            tx.done = True
            await self.on_thread(lambda: _end(conn, commit=True))

    async def run(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` on the writer thread and return its result (exceptions propagate).

        `fn` must leave no transaction open: use `immediate(db)` or `db.atomic()` blocks.
        """

        def call(sdb: sqlite_utils.Database) -> T:
            try:
                return fn(sdb)
            finally:
                if sdb.conn.in_transaction:
                    # A half-done transaction would swallow every later write; undo it.
                    sdb.conn.execute("ROLLBACK")

        return await self._submit(call)

    async def close(self) -> None:
        """Checkpoint the WAL into the database file, close the connection and stop the thread.

        Waits for an open transaction to end. Safe to call more than once.
        """
        async with self._close_lock:
            if self._closed:
                return
            async with self._order:
                self._closed = True
                sdb, self._db = self._db, None
            if sdb is None:
                self._executor.shutdown()
                return

            def finish() -> None:
                try:
                    if sdb.conn.in_transaction:
                        sdb.conn.execute("ROLLBACK")
                    # Another replica may hold the file open; a busy checkpoint is not an error.
                    with contextlib.suppress(sqlite3.OperationalError):
                        sdb.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                finally:
                    sdb.conn.close()

            try:
                await self.on_thread(finish)
            finally:
                # The close job was the last one queued, so the thread ends on its own.
                self._executor.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Database {self.path} {state}>"

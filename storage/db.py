"""The SQLite database: WAL mode, numbered migrations and one writer thread that does all SQLite work.

Like datasette, nothing here touches SQLite on the event loop: every call is a function handed to
`Database.run`, which runs it on a single dedicated thread that owns the connection. Two bot
replicas may share one file; SQLite's locks, a busy timeout and `BEGIN IMMEDIATE` for every
read-modify-write keep them from stepping on each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import sqlite_utils

from storage.crypto import SecretBox
from storage.migrations import migrations

__all__ = ["BUSY_TIMEOUT_MS", "Database", "DatabaseClosedError", "immediate", "utc_now"]

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
MEMORY = ":memory:"


class DatabaseClosedError(RuntimeError):
    """The database was used after `close()`."""


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string with microseconds; sorts as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@contextlib.contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block in a `BEGIN IMMEDIATE` transaction: take the write lock before reading.

    Use it for every read-modify-write, so another process cannot change what was read before the
    write lands. Commits on success and rolls back on any exception.
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
    """Open the connection (on the writer thread), set the pragmas and apply pending migrations."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db = sqlite_utils.Database(conn, execute_plugins=False)
        if path != MEMORY:
            with db.ensure_autocommit_on():
                _enable_wal(conn, path)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # One write lock around the whole upgrade, so two replicas starting together do not both try
        # to create the tables; each migration still runs in its own savepoint with its record.
        with immediate(db):
            migrations.apply(db)
    except BaseException:
        conn.close()
        raise
    return db


class Database:
    """An open SQLite database whose every call runs on one dedicated writer thread.

    Create it with `await Database.open(path)`; call SQLite through `await db.run(fn)`; finish with
    `await db.close()`. `box` encrypts and decrypts the stored Twilio secrets.
    """

    path: Path
    box: SecretBox

    def __init__(self, path: Path, box: SecretBox, executor: ThreadPoolExecutor) -> None:
        """Use `Database.open`; this only stores what it prepared."""
        self.path = path
        self.box = box
        self._executor = executor
        self._db: sqlite_utils.Database | None = None
        self._closed = False
        self._close_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        secret_keys: str | None = None,
        key_file: Path | None = None,
    ) -> Database:
        """Open (creating if needed) the database at `path`, or `":memory:"`, and migrate it.

        `secret_keys` is the SECRET_KEY setting (comma-separated Fernet keys, newest first). Without
        it the key is read from `key_file` (default: `secret.key` beside the database), which is
        generated once with mode 0600 when missing. An in-memory database without keys gets a
        throwaway key. Raises `storage.crypto.KeyConfigError` for an unusable key setting.
        """
        memory = str(path) == MEMORY
        db_path = Path(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        loop = asyncio.get_running_loop()
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

            box, sdb = await loop.run_in_executor(executor, prepare)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        database = cls(db_path, box, executor)
        database._db = sdb
        return database

    @property
    def closed(self) -> bool:
        """True once `close()` has started."""
        return self._closed

    async def run(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` on the writer thread and return its result (exceptions propagate).

        `fn` must leave no transaction open: use `immediate(db)` or `db.atomic()` blocks.
        """
        if self._closed or self._db is None:
            raise DatabaseClosedError("The database is closed.")
        sdb = self._db

        def call() -> T:
            try:
                return fn(sdb)
            finally:
                if sdb.conn.in_transaction:
                    # A half-done transaction would swallow every later write; undo it.
                    sdb.conn.execute("ROLLBACK")

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        """Checkpoint the WAL into the database file, close the connection and stop the thread.

        Safe to call more than once.
        """
        async with self._close_lock:
            if self._closed:
                return
            self._closed = True
            sdb, self._db = self._db, None
            if sdb is not None:

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
                    await asyncio.get_running_loop().run_in_executor(self._executor, finish)
                finally:
                    # The close job was the last one queued, so the thread ends on its own.
                    self._executor.shutdown(wait=False)
            else:
                self._executor.shutdown(wait=False)

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Database {self.path} {state}>"

"""The storage tests' database, on both engines: one `db` fixture, parametrised sqlite / postgresql.

PostgreSQL comes from TEST_DATABASE_URL (default `postgresql:///test`); each test gets a fresh schema
(chosen through the URL's `options=-csearch_path=…`, as any deployment could), dropped afterwards.
Without a server the PostgreSQL half skips with one line saying how to get one; under CI=true it
fails instead, because CI has the server. Imported by conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qsl, quote, urlencode

import psycopg
import pytest
import sqlite_utils
from builders import ACCOUNT_SID, NOW, OUR_NUMBER, THEIR_NUMBER
from cryptography.fernet import Fernet
from psycopg.conninfo import conninfo_to_dict
from sqlite_utils.migrations import Migrations

from storage.conversations import Conversation, ConversationStore
from storage.db import Database
from storage.migrations import MIGRATIONS
from storage.outbox import NewOutboxEntry, Outbox, OutboxEntry

DEFAULT_TEST_DATABASE_URL = "postgresql:///test"
# One key for every database a test opens, unless the test passes its own.
DB_KEY = Fernet.generate_key().decode()
# Small pools: several tests' databases may be open at once, and other test runs share the server.
TEST_POOL_SIZE = 2


def postgres_test_url() -> str:
    """The PostgreSQL server the tests use."""
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL


def postgres_unavailable(reason: str) -> NoReturn:
    """Skip with one line that says how to get a server; fail under CI=true, where there is one."""
    line = (
        f"no PostgreSQL at {postgres_test_url()} ({reason}); start one (apt-get install postgresql, or "
        "docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres) or set TEST_DATABASE_URL"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{line} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(line)


def with_search_path(url: str, schema: str) -> str:
    """`url` with libpq's `options=-csearch_path=schema` added, so every pooled connection uses it."""
    # Split by hand: urllib turns `postgresql:///test` (no host: the local socket) into `postgresql:/test`.
    base, _, query_text = url.partition("?")
    query = parse_qsl(query_text, keep_blank_values=True)
    options = " ".join([value for key, value in query if key == "options"] + [f"-csearch_path={schema}"])
    query = [(key, value) for key, value in query if key != "options"] + [("options", options)]
    return f"{base}?{urlencode(query)}"


async def eventually(check: Callable[[], Awaitable[bool]], *, what: str, timeout: float = 10.0) -> None:
    """Return once `await check()` holds; fail after `timeout` seconds (polls every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


SEND_REQUEST = {"to": "+15551234567", "from": "+15557654321", "body": "Hello", "send_at": None}


async def claim_send(outbox: Outbox, key: str, **changes: Any) -> tuple[OutboxEntry, bool]:
    """Claim `key` for a send by U1 in C1 of team T1 from its "main" account; `changes` replace fields."""
    values: dict[str, Any] = {
        "key": key,
        "team_id": "T1",
        "user_id": "U1",
        "channel_id": "C1",
        "operation": "send",
        "request": SEND_REQUEST,
        "account_label": "main",
        "account_sid": "AC" + "0" * 32,
    }
    values.update(changes)
    lease = {name: values.pop(name) for name in ("owner", "lease_seconds") if name in values}
    return await outbox.claim(NewOutboxEntry(**values), **lease)


async def open_conversation(store: ConversationStore, **changes: Any) -> Conversation:
    """Open team T1's conversation in C1 between OUR_NUMBER of its "main" account and THEIR_NUMBER, at
    NOW, with no profile name and no earlier conversation; `changes` replace arguments."""
    values: dict[str, Any] = {
        "team_id": "T1",
        "channel_id": "C1",
        "account_label": "main",
        "account_sid": ACCOUNT_SID,
        "our_number": OUR_NUMBER,
        "their_number": THEIR_NUMBER,
        "profile_name": None,
        "previous_id": None,
        "at": NOW,
    }
    values.update(changes)
    return await store.open(**values)


def errors_in_threads(count: int, replica: Callable[[], Coroutine[Any, Any, None]]) -> list[BaseException]:
    """Run `replica()` in `count` threads at once, each with its own event loop, as replicas would;
    returns what they raised."""
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            asyncio.run(replica())
        except BaseException as err:  # collected for the caller to assert on
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _run_statements(statements: list[str]) -> Callable[[sqlite_utils.Database], None]:
    def apply(db: sqlite_utils.Database) -> None:
        for statement in statements:
            db.execute(statement)

    return apply


def old_sqlite_utils_file(path: Path) -> None:
    """A file as the bot made it before PostgreSQL support: sqlite-utils Migrations, 0001 to 0004."""
    old = Migrations("slack-twilio-bridge")
    for migration in MIGRATIONS[:4]:
        old(name=migration.name)(_run_statements(migration.sql("sqlite")))
    db = sqlite_utils.Database(path)
    try:
        old.apply(db)
        db.execute(
            "INSERT INTO teams (team_id, log_channel_id, default_region, updated_at) "
            "VALUES ('T1', 'C1', 'GB', '2025-01-01T00:00:00+00:00')"
        )
        db.execute(
            "INSERT INTO outbox (key, team_id, user_id, channel_id, operation, request_json, created_at) "
            "VALUES ('k1', 'T1', 'U1', 'C1', 'send', '{}', '2025-01-01T00:00:00+00:00')"
        )
    finally:
        db.close()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a PostgreSQL that answers (checked once per run), or a skip that says how to get one."""
    url = postgres_test_url()
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        postgres_unavailable(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
    return url


@pytest.fixture
def postgres_schema(postgres_server: str) -> Iterator[str]:
    """A fresh empty schema for one test; yields a URL that uses it, and drops it afterwards."""
    schema = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(postgres_server, schema)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@dataclass(frozen=True)
class DbTarget:
    """Where a storage test's data lives: a SQLite file or a PostgreSQL schema; open it as often as needed."""

    engine: str
    where: str

    async def open(self, secret_keys: str | None = DB_KEY) -> Database:
        """Another Database on the same data (a second replica, or a reopen with other keys)."""
        return await Database.connect(self.where, secret_keys=secret_keys, pool_size=TEST_POOL_SIZE)

    def open_sync(self, secret_keys: str | None = DB_KEY) -> None:
        """Open and close once in a fresh loop (creates the schema before threads race on it)."""

        async def once() -> None:
            db = await self.open(secret_keys)
            await db.close()

        asyncio.run(once())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> DbTarget:
    """A place for a test's database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return DbTarget("sqlite", str(tmp_path / "bot.db"))
    return DbTarget("postgresql", request.getfixturevalue("postgres_schema"))


@pytest.fixture
async def db(db_target: DbTarget) -> AsyncIterator[Database]:
    """An open, migrated Database on each engine (keys: DB_KEY), closed after the test."""
    database = await db_target.open()
    try:
        yield database
    finally:
        await database.close()


class Proxy:
    """A loopback TCP proxy to the test server that can be taken down and brought back on its port."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.upstream
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._open_upstream()
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        """Listen (again, on the same port after a stop)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut every open one, as a server going down does."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()


@pytest.fixture
async def proxied(postgres_schema: str) -> AsyncIterator[tuple[Proxy, str]]:
    """A started Proxy to the test server and a URL (with the test's schema) that goes through it."""
    with psycopg.connect(postgres_schema) as conn:
        info = conn.info
        host, port, user, dbname = info.host, info.port, info.user, info.dbname
    proxy = Proxy(host, port)
    await proxy.start()
    password = conninfo_to_dict(postgres_schema).get("password")
    auth = quote(user) + (f":{quote(str(password))}" if password else "")
    schema = conninfo_to_dict(postgres_schema)["options"].split("search_path=")[1]
    url = with_search_path(f"postgresql://{auth}@127.0.0.1:{proxy.port}/{quote(dbname)}", schema)
    try:
        yield proxy, url
    finally:
        with contextlib.suppress(AssertionError):
            await proxy.stop()

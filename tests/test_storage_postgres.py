"""PostgreSQL only: an outage is a clear DatabaseUnavailable, the pool heals itself, timeouts hold.

An outage is made with a TCP proxy in front of the test server that the test stops and starts again
(nothing else shares it), so the real server keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import quote

import psycopg
import pytest
from botproc import unused_port
from psycopg.conninfo import conninfo_to_dict
from storage_fixtures import DB_KEY, DbTarget, eventually, with_search_path

from storage.crypto import KeyConfigError
from storage.db import Database, DatabaseUnavailable
from storage.postgres import redact_url
from storage.teams import TeamSettings

pytestmark = pytest.mark.postgres


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


async def test_an_unreachable_server_is_a_sentence_at_start() -> None:
    """Nothing listening: DatabaseUnavailable names the URL without its password and says what to check."""
    port = unused_port()
    url = f"postgresql://bot:hunter2-password@127.0.0.1:{port}/bot"
    with pytest.raises(DatabaseUnavailable) as caught:
        await Database.connect(url, secret_keys=DB_KEY, connect_timeout=1)
    message = str(caught.value)
    assert "hunter2-password" not in message
    assert f"postgresql://bot:***@127.0.0.1:{port}/bot" in message
    assert "check DATABASE_URL and that the server is running" in message


async def test_an_outage_is_a_clear_error_and_the_pool_recovers(proxied: tuple[Proxy, str]) -> None:
    """Server gone: the call raises DatabaseUnavailable with its sentence; server back: calls work again."""
    proxy, url = proxied
    db = await Database.connect(url, secret_keys=DB_KEY, pool_size=2, connect_timeout=1)
    try:
        teams = TeamSettings(db)
        await teams.set_log_channel("T1", "C1", updated_by="U1")
        await proxy.stop()
        with pytest.raises(DatabaseUnavailable) as caught:
            await teams.set_log_channel("T1", "C2", updated_by="U1")
        assert str(caught.value) == "The bot's database is not answering; nothing was sent."
        assert caught.value.detail
        assert await db.ping() is False
        await proxy.start()
        await eventually(db.ping, what="the pool to reconnect", timeout=30)
        assert await teams.get_log_channel("T1") == "C1"
    finally:
        await db.close()


async def test_connections_the_server_dropped_are_replaced_quietly(postgres_schema: str) -> None:
    """After the server ends every pooled session (as a restart does), the next calls just work."""
    db = await DbTarget("postgresql", postgres_schema).open()
    try:
        rows = await asyncio.gather(*(db.fetch_one("SELECT pg_backend_pid() AS pid") for _ in range(4)))
        first = {row["pid"] for row in rows if row is not None}
        with psycopg.connect(postgres_schema, autocommit=True) as admin:
            for pid in first:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(4):
            row = await db.fetch_one("SELECT pg_backend_pid() AS pid")
            assert row is not None and row["pid"] not in first
    finally:
        await db.close()


async def test_a_statement_cut_off_mid_way_is_database_unavailable(postgres_schema: str) -> None:
    """A session killed while its statement runs raises DatabaseUnavailable; the next call works."""
    db = await DbTarget("postgresql", postgres_schema).open()
    watcher = await DbTarget("postgresql", postgres_schema).open()
    marker = f"cut_{secrets.token_hex(4)}"
    try:
        running = asyncio.create_task(db.fetch_one(f"SELECT pg_sleep(30) AS {marker}"))

        async def started() -> bool:
            row = await watcher.fetch_one(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE ? AND pid != pg_backend_pid()",
                [f"%AS {marker}"],
            )
            if row is None:
                return False
            await watcher.fetch_one("SELECT pg_terminate_backend(?) AS done", [row["pid"]])
            return True

        await eventually(started, what="the statement to start")
        with pytest.raises(DatabaseUnavailable):
            await running
        assert await db.fetch_one("SELECT 1 AS one") == {"one": 1}
    finally:
        await db.close()
        await watcher.close()


async def test_every_statement_has_a_timeout(postgres_schema: str) -> None:
    """A statement longer than statement_timeout is cancelled as DatabaseUnavailable; the pool goes on."""
    db = await Database.connect(postgres_schema, secret_keys=DB_KEY, pool_size=1, statement_timeout=0.2)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await db.fetch_one("SELECT pg_sleep(5) AS slept")
        assert "statement timeout" in caught.value.detail
        assert await db.fetch_one("SHOW statement_timeout") == {"statement_timeout": "200ms"}
    finally:
        await db.close()


async def test_the_pool_holds_pool_size_connections(postgres_schema: str) -> None:
    """Many concurrent calls share exactly DATABASE_POOL_SIZE server sessions."""
    db = await Database.connect(postgres_schema, secret_keys=DB_KEY, pool_size=3)
    try:
        rows = await asyncio.gather(
            *(db.fetch_one("SELECT pg_backend_pid() AS pid, pg_sleep(0.05) AS slept") for _ in range(9))
        )
        assert len({row["pid"] for row in rows if row is not None}) == 3
    finally:
        await db.close()


async def test_postgres_needs_the_secret_key_given(postgres_schema: str) -> None:
    """No SECRET_KEY and no key file: refused with a sentence, since replicas must share one key."""
    with pytest.raises(KeyConfigError, match="set SECRET_KEY"):
        await Database.connect(postgres_schema)


def test_redact_url_hides_only_the_password() -> None:
    """The password becomes ***; user, host, database and options stay readable."""
    assert redact_url("postgresql://bot:s3cret@db.example:5432/bot?sslmode=require") == (
        "postgresql://bot:***@db.example:5432/bot?sslmode=require"
    )
    assert redact_url("postgresql:///test") == "postgresql:///test"

"""PostgreSQL only: an outage is a clear DatabaseUnavailable, the pool heals itself, timeouts hold.

An outage is made with a TCP proxy in front of the test server that the test stops and starts again
(nothing else shares it), so the real server keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import secrets

import psycopg
import pytest
from botproc import unused_port
from storage_fixtures import DB_KEY, DbTarget, Proxy, eventually

from storage.crypto import KeyConfigError
from storage.db import Database, DatabaseUnavailable, Row
from storage.postgres import redact_url
from storage.teams import TeamSettings

pytestmark = pytest.mark.postgres


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


async def test_ping_says_yes_while_every_pooled_connection_is_busy(postgres_schema: str) -> None:
    """A statement answered just now is the answer: /healthz does not queue behind a burst's statements."""
    db = await Database.connect(postgres_schema, secret_keys=DB_KEY, pool_size=1)
    try:
        assert await db.fetch_one("SELECT 1 AS one") == {"one": 1}
        busy = asyncio.create_task(db.fetch_one("SELECT pg_sleep(3) AS slept"))
        assert await asyncio.wait_for(db.ping(), 1.0) is True
        await busy
    finally:
        await db.close()


async def hold_the_only_connection(
    db: Database, watcher: Database, seconds: float, *, what: str
) -> asyncio.Task[Row | None]:
    """Run `pg_sleep(seconds)` on `db`'s one pooled connection; return its task once `watcher` sees it run."""
    marker = f"hold_{secrets.token_hex(4)}"
    busy = asyncio.create_task(db.fetch_one(f"SELECT pg_sleep({seconds:g}) AS {marker}"))

    async def running() -> bool:
        row = await watcher.fetch_one(
            "SELECT 1 AS found FROM pg_stat_activity WHERE query LIKE ? AND state = 'active'",
            [f"%AS {marker}"],
        )
        return row is not None

    await eventually(running, what=what)
    return busy


async def test_a_busy_pool_is_waited_for_not_called_an_outage(postgres_schema: str) -> None:
    """Every connection busy for longer than the checkout timeout, the server answering: the next
    statement waits its turn and succeeds instead of raising DatabaseUnavailable."""
    db = await Database.connect(postgres_schema, secret_keys=DB_KEY, pool_size=1, connect_timeout=1)
    watcher = await DbTarget("postgresql", postgres_schema).open()
    try:
        assert await db.fetch_one("SELECT 1 AS one") == {"one": 1}
        busy = await hold_the_only_connection(
            db, watcher, 2.5, what="the long statement to hold the only connection"
        )
        assert await db.fetch_one("SELECT 2 AS two") == {"two": 2}
        assert busy.done()
    finally:
        await db.close()
        await watcher.close()


async def test_writes_before_an_ack_do_not_queue_behind_a_busy_pool(postgres_schema: str) -> None:
    """write_batches (the journal's group commit) has a connection of its own: it commits at once while
    every connection of the main pool is busy."""
    db = await Database.connect(postgres_schema, secret_keys=DB_KEY, pool_size=1)
    watcher = await DbTarget("postgresql", postgres_schema).open()
    try:
        await db.execute("CREATE TABLE acks (n INTEGER)")
        busy = await hold_the_only_connection(
            db, watcher, 3, what="the long statement to hold the main pool's only connection"
        )
        await asyncio.wait_for(db.write_batches([("INSERT INTO acks (n) VALUES (?)", [[1], [2]])]), 1.5)
        assert not busy.done()
        assert await watcher.fetch_one("SELECT count(*) AS n FROM acks") == {"n": 2}
        await busy
    finally:
        await db.close()
        await watcher.close()

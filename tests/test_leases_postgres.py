"""A replica's leases on PostgreSQL: renewals, and bookkeeping kept through a database outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from storage_fixtures import DB_KEY, Proxy, claim_send, eventually

from bot.leases import Leases
from storage.db import Database, DatabaseUnavailable
from storage.outbox import Outbox, Settlement

pytestmark = pytest.mark.postgres


async def test_writes_wait_through_an_outage_and_keep_the_key_leased(proxied: tuple[Proxy, str]) -> None:
    """With the database gone, a write is kept (its key still held); once back, flush writes it in order."""
    proxy, url = proxied
    db = await Database.connect(url, secret_keys=DB_KEY, pool_size=2, connect_timeout=1)
    try:
        outbox = Outbox(db)
        leases = Leases(outbox, owner="me", lease_seconds=60)
        await claim_send(outbox, "k1", owner="me", lease_seconds=60)
        leases.hold("k1")
        await proxy.stop()
        await leases.write("k1", lambda: outbox.settle("k1", Settlement("sent", message_sid="SM" + "1" * 32)))
        await leases.write("k1", lambda: outbox.mark_card_posted("k1"))
        leases.let_go("k1")  # the task ended; its outcome is not written yet
        assert (leases.unsaved, leases.held()) == (2, {"k1"})
        await proxy.start()

        async def flushed() -> bool:
            try:
                await leases.flush()
            except DatabaseUnavailable:
                return False  # the pool is still reconnecting
            return leases.unsaved == 0

        await eventually(flushed, what="the kept writes to reach the database", timeout=30)
        row = await outbox.get("k1")
        assert row is not None and (row.state, row.card_posted) == ("sent", True)
        assert leases.held() == set()
    finally:
        await db.close()


async def test_renew_extends_only_leases_a_third_spent_and_ours(postgres_schema: str) -> None:
    """A fresh claim costs no renewal; `all_held` renews it; a row taken over by another is not renewed."""
    db = await Database.connect(postgres_schema, secret_keys=DB_KEY, pool_size=2)
    try:
        outbox = Outbox(db)
        leases = Leases(outbox, owner="me", lease_seconds=30)
        await claim_send(outbox, "mine", owner="me", lease_seconds=30)
        await claim_send(outbox, "lost", owner="me", lease_seconds=1)
        leases.hold("mine")
        leases.hold("lost")
        assert await leases.renew() == 0
        taken = await outbox.take_stale("other", datetime.now(UTC) + timedelta(seconds=2))
        assert [e.key for e in taken] == ["lost"]
        assert await leases.renew(all_held=True) == 1
        mine = await outbox.get("mine")
        assert mine is not None and mine.lease_until is not None
        assert mine.lease_until > datetime.now(UTC) + timedelta(seconds=25)
    finally:
        await db.close()

"""The outbox: one claim per idempotency key, even across replicas, and no credentials in requests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from storage_fixtures import DbTarget

from storage.db import Database
from storage.outbox import Outbox, OutboxEntry

REQUEST = {"to": "+15551234567", "from": "+15557654321", "body": "Hello", "send_at": None}


async def _claim(outbox: Outbox, key: str, **changes: Any) -> tuple[OutboxEntry, bool]:
    values: dict[str, Any] = {
        "key": key,
        "team_id": "T1",
        "user_id": "U1",
        "channel_id": "C1",
        "operation": "send",
        "request": REQUEST,
        "account_label": "main",
        "account_sid": "AC" + "0" * 32,
    }
    values.update(changes)
    return await outbox.claim(**values)


async def test_claiming_a_key_twice_returns_false_the_second_time(db: Database) -> None:
    """The first claim creates the entry; a retry gets the same entry and False."""
    outbox = Outbox(db)
    entry, created = await _claim(outbox, "k1")
    again, created_again = await _claim(outbox, "k1", user_id="U2")
    assert created is True and created_again is False
    assert again.id == entry.id and again.user_id == "U1"
    assert entry.state == "pending" and entry.attempts == 1 and not entry.card_posted
    assert dict(entry.request) == REQUEST


async def test_two_replicas_racing_on_one_key_get_exactly_one_claim(db_target: DbTarget) -> None:
    """Two Database instances on one database, claiming together: exactly one True."""
    a, b = await db_target.open(), await db_target.open()
    try:
        for n in range(20):
            results = await asyncio.gather(
                *(_claim(Outbox(db), f"key-{n}") for db in (a, b, a, b)),
            )
            assert sorted(created for _, created in results) == [False, False, False, True]
            assert len({entry.id for entry, _ in results}) == 1
    finally:
        await a.close()
        await b.close()


def test_replicas_in_threads_racing_on_one_key_get_exactly_one_claim(db_target: DbTarget) -> None:
    """Six threads, each its own loop and Database, claim the same keys: one winner per key."""
    db_target.open_sync()
    barrier = threading.Barrier(6)
    wins: list[str] = []
    errors: list[BaseException] = []

    async def replica() -> None:
        db = await db_target.open()
        try:
            barrier.wait()
            for n in range(10):
                _, created = await _claim(Outbox(db), f"key-{n}")
                if created:
                    wins.append(f"key-{n}")
        finally:
            await db.close()

    def worker() -> None:
        try:
            asyncio.run(replica())
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(wins) == sorted(f"key-{n}" for n in range(10))


@pytest.mark.parametrize("bad", ["secret", "auth_token", "password", "account_sid"])
async def test_requests_outside_the_allow_list_are_refused(db: Database, bad: str) -> None:
    """A request key that is not to/from/service/body/send_at/media_urls is refused, nothing stored."""
    outbox = Outbox(db)
    with pytest.raises(ValueError, match="credentials never go into the outbox"):
        await _claim(outbox, "k1", request={**REQUEST, bad: "x"})
    assert await outbox.get("k1") is None


async def test_unknown_operation_and_state_are_refused(db: Database) -> None:
    """Only send/schedule can be claimed, and only sent/failed/unknown can settle."""
    outbox = Outbox(db)
    with pytest.raises(ValueError):
        await _claim(outbox, "k1", operation="delete")
    await _claim(outbox, "k2")
    with pytest.raises(ValueError):
        await outbox.settle("k2", state="pending")


async def test_media_urls_round_trip_as_a_tuple(db: Database) -> None:
    """A list of media URLs is stored and read back as a tuple of text."""
    entry, _ = await _claim(Outbox(db), "k1", request={**REQUEST, "media_urls": ["https://x/a.png"]})
    assert entry.request["media_urls"] == ("https://x/a.png",)


async def test_settle_and_mark_card_posted_are_recorded(db: Database) -> None:
    """settle() stores the outcome and time; mark_card_posted() sets the flag."""
    outbox = Outbox(db)
    await _claim(outbox, "k1", operation="schedule")
    await outbox.settle("k1", state="failed", error_code=21211, error_message="bad number")
    await outbox.mark_card_posted("k1")
    entry = await outbox.get("k1")
    assert entry is not None
    assert (entry.state, entry.error_code, entry.error_message) == ("failed", 21211, "bad number")
    assert entry.settled_at is not None and entry.settled_at >= entry.created_at
    assert entry.card_posted and entry.operation == "schedule"


async def test_pending_lists_unsettled_entries_oldest_first(db: Database) -> None:
    """pending() returns only state 'pending', in claim order; unposted() any without a card."""
    outbox = Outbox(db)
    for key in ("a", "b", "c", "d"):
        await _claim(outbox, key)
    await outbox.settle("b", state="sent", message_sid="SM" + "1" * 32)
    await outbox.settle("d", state="unknown")
    await outbox.mark_card_posted("d")
    assert [e.key for e in await outbox.pending()] == ["a", "c"]
    assert [e.key for e in await outbox.unposted()] == ["a", "b", "c"]
    assert await outbox.get("missing") is None

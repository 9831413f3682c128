"""The outbox: one claim per idempotency key, even across replicas, and no credentials in requests."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from storage_fixtures import SEND_REQUEST, DbTarget, claim_send, errors_in_threads

from storage.db import Database
from storage.outbox import Outbox, Settlement


async def test_claiming_a_key_twice_returns_false_the_second_time(db: Database) -> None:
    """The first claim creates the entry; a retry gets the same entry and False."""
    outbox = Outbox(db)
    entry, created = await claim_send(outbox, "k1")
    again, created_again = await claim_send(outbox, "k1", user_id="U2")
    assert created is True and created_again is False
    assert again.id == entry.id and again.user_id == "U1"
    assert entry.state == "pending" and entry.attempts == 1 and not entry.card_posted
    assert dict(entry.request) == SEND_REQUEST


async def test_two_replicas_racing_on_one_key_get_exactly_one_claim(db_target: DbTarget) -> None:
    """Two Database instances on one database, claiming together: exactly one True."""
    a, b = await db_target.open(), await db_target.open()
    try:
        for n in range(20):
            results = await asyncio.gather(
                *(claim_send(Outbox(db), f"key-{n}") for db in (a, b, a, b)),
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

    async def replica() -> None:
        db = await db_target.open()
        try:
            barrier.wait()
            for n in range(10):
                _, created = await claim_send(Outbox(db), f"key-{n}")
                if created:
                    wins.append(f"key-{n}")
        finally:
            await db.close()

    assert errors_in_threads(6, replica) == []
    assert sorted(wins) == sorted(f"key-{n}" for n in range(10))


@pytest.mark.parametrize("bad", ["secret", "auth_token", "password", "account_sid"])
async def test_requests_outside_the_allow_list_are_refused(db: Database, bad: str) -> None:
    """A request key that is not to/from/service/body/send_at/media_urls is refused, nothing stored."""
    outbox = Outbox(db)
    with pytest.raises(ValueError, match="credentials never go into the outbox"):
        await claim_send(outbox, "k1", request={**SEND_REQUEST, bad: "x"})
    assert await outbox.get("k1") is None


async def test_unknown_operation_and_state_are_refused(db: Database) -> None:
    """Only send/schedule can be claimed, and only sent/failed/unknown can settle."""
    outbox = Outbox(db)
    with pytest.raises(ValueError):
        await claim_send(outbox, "k1", operation="delete")
    await claim_send(outbox, "k2")
    with pytest.raises(ValueError):
        await outbox.settle("k2", Settlement("pending"))


async def test_media_urls_round_trip_as_a_tuple(db: Database) -> None:
    """A list of media URLs is stored and read back as a tuple of text."""
    entry, _ = await claim_send(Outbox(db), "k1", request={**SEND_REQUEST, "media_urls": ["https://x/a.png"]})
    assert entry.request["media_urls"] == ("https://x/a.png",)


async def test_settle_and_mark_card_posted_are_recorded(db: Database) -> None:
    """settle() stores the outcome and time; mark_card_posted() sets the flag."""
    outbox = Outbox(db)
    await claim_send(outbox, "k1", operation="schedule")
    await outbox.settle("k1", Settlement("failed", error_code=21211, error_message="bad number"))
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
        await claim_send(outbox, key)
    await outbox.settle("b", Settlement("sent", message_sid="SM" + "1" * 32))
    await outbox.settle("d", Settlement("unknown"))
    await outbox.mark_card_posted("d")
    assert [e.key for e in await outbox.pending()] == ["a", "c"]
    assert [e.key for e in await outbox.unposted()] == ["a", "b", "c"]
    assert await outbox.get("missing") is None


async def test_count_pending_counts_only_unsettled_entries(db: Database) -> None:
    """count_pending() is 0 on an empty outbox and then counts state 'pending' only."""
    outbox = Outbox(db)
    assert await outbox.count_pending() == 0
    for key in ("a", "b", "c"):
        await claim_send(outbox, key)
    await outbox.settle("b", Settlement("sent", message_sid="SM" + "1" * 32))
    assert await outbox.count_pending() == 2


# ── leases: another replica takes over what a dead one left ─────────────────────────────────────────


async def test_a_claim_without_owner_has_no_lease_and_is_never_taken(db: Database) -> None:
    """The old single-process claim still works: no owner, no lease, left to start-up recovery."""
    outbox = Outbox(db)
    entry, _ = await claim_send(outbox, "k1")
    assert (entry.owner, entry.lease_until) == (None, None)
    assert await outbox.take_stale("r2", datetime.now(UTC) + timedelta(days=1)) == []


async def test_an_owned_claim_is_leased_and_renew_extends_it(db: Database) -> None:
    """claim(owner=…) leases the row; renew moves the lease on, but only for its owner."""
    outbox = Outbox(db)
    now = datetime.now(UTC)
    entry, _ = await claim_send(outbox, "k1", owner="r1", lease_seconds=30)
    assert entry.owner == "r1" and entry.lease_until is not None
    assert entry.lease_until - entry.created_at == timedelta(seconds=30)
    assert await outbox.renew("k1", owner="r1", lease_seconds=300, now=now) is True
    renewed = await outbox.get("k1")
    assert renewed is not None and renewed.lease_until == now + timedelta(seconds=300)
    assert await outbox.renew("k1", owner="r2") is False
    assert await outbox.renew("missing", owner="r1") is False


async def test_take_stale_takes_only_expired_unposted_rows(db: Database) -> None:
    """Rows whose lease ran out and whose card is not posted move to the new owner, oldest first."""
    outbox = Outbox(db)
    for key, seconds in (("old-1", 10), ("old-2", 20), ("fresh", 3600), ("posted", 10)):
        await claim_send(outbox, key, owner="r1", lease_seconds=seconds)
    await outbox.settle("posted", Settlement("sent", message_sid="SM" + "1" * 32))
    await outbox.mark_card_posted("posted")
    later = datetime.now(UTC) + timedelta(seconds=60)
    taken = await outbox.take_stale("r2", later, limit=10, lease_seconds=45)
    assert [entry.key for entry in taken] == ["old-1", "old-2"]
    assert all(
        e.owner == "r2" and e.attempts == 2 and e.lease_until == later + timedelta(seconds=45) for e in taken
    )
    assert await outbox.take_stale("r3", later) == []
    assert await outbox.renew("old-1", owner="r1") is False
    assert await outbox.renew("old-1", owner="r2") is True


async def test_a_settled_row_without_its_card_is_still_taken_over(db: Database) -> None:
    """A replica that died after Twilio answered but before the card leaves a row to take over."""
    outbox = Outbox(db)
    await claim_send(outbox, "k1", owner="r1", lease_seconds=1)
    await outbox.settle("k1", Settlement("sent", message_sid="SM" + "2" * 32))
    (taken,) = await outbox.take_stale("r2", datetime.now(UTC) + timedelta(seconds=5))
    assert (taken.key, taken.state, taken.owner) == ("k1", "sent", "r2")


async def test_take_stale_respects_the_limit(db: Database) -> None:
    """At most `limit` rows per call; the rest wait for the next call."""
    outbox = Outbox(db)
    for n in range(5):
        await claim_send(outbox, f"k{n}", owner="r1", lease_seconds=1)
    later = datetime.now(UTC) + timedelta(seconds=5)
    first = await outbox.take_stale("r2", later, limit=3)
    second = await outbox.take_stale("r2", later, limit=3)
    assert [e.key for e in first] == ["k0", "k1", "k2"] and [e.key for e in second] == ["k3", "k4"]


async def test_two_takers_at_once_never_get_the_same_row(db_target: DbTarget) -> None:
    """Two replicas (several tasks each) take stale rows together: every row goes to exactly one."""
    a, b = await db_target.open(), await db_target.open()
    try:
        for n in range(40):
            await claim_send(Outbox(a), f"k{n}", owner="dead", lease_seconds=1)
        later = datetime.now(UTC) + timedelta(seconds=5)
        takers = [(owner, db) for owner, db in (("a1", a), ("b1", b), ("a2", a), ("b2", b)) for _ in range(4)]
        rounds = await asyncio.gather(*(Outbox(db).take_stale(owner, later, limit=3) for owner, db in takers))
        keys = [entry.key for taken in rounds for entry in taken]
        assert len(keys) == len(set(keys)), "a row was taken twice"
        rest = await Outbox(a).take_stale("last", later, limit=1000)
        assert sorted(keys + [entry.key for entry in rest]) == sorted(f"k{n}" for n in range(40))
        stored = {entry.key: entry.owner for entry in await Outbox(b).unposted()}
        for (owner, _), taken in zip(takers, rounds, strict=True):
            assert all(stored[entry.key] == owner for entry in taken)
    finally:
        await a.close()
        await b.close()


@pytest.mark.postgres
async def test_a_taker_skips_rows_another_taker_holds(postgres_schema: str) -> None:
    """PostgreSQL: rows locked by another replica's taker are skipped at once, not waited for."""
    target = DbTarget("postgresql", postgres_schema)
    a, b = await target.open(), await target.open()
    try:
        for n in range(4):
            await claim_send(Outbox(a), f"k{n}", owner="dead", lease_seconds=1)
        later = datetime.now(UTC) + timedelta(seconds=5)
        async with a.transaction() as tx:
            held = await tx.fetch_all("SELECT key FROM outbox WHERE key IN ('k0', 'k1') FOR UPDATE")
            assert len(held) == 2
            # Without SKIP LOCKED this would wait for the lock until the statement timeout.
            taken = await Outbox(b).take_stale("b", later)
        assert [entry.key for entry in taken] == ["k2", "k3"]
    finally:
        await a.close()
        await b.close()


async def test_take_stale_refuses_a_naive_time(db: Database) -> None:
    """A time without a zone could be read in the wrong one; it is refused with a sentence."""
    with pytest.raises(ValueError, match="time zone"):
        await Outbox(db).take_stale("r1", datetime(2030, 1, 1))


async def test_expire_unowned_hands_ownerless_rows_to_the_reconcilers_once(db: Database) -> None:
    """Rows claimed without an owner get an expired lease (once); take_stale then takes each exactly once."""
    outbox = Outbox(db)
    await claim_send(outbox, "old-1")
    await claim_send(outbox, "old-2")
    await claim_send(outbox, "owned", owner="r1", lease_seconds=300)
    await claim_send(outbox, "done")
    await outbox.mark_card_posted("done")
    now = datetime.now(UTC)
    assert await outbox.expire_unowned("r2", now) == 2
    assert await outbox.expire_unowned("r3", now) == 0  # a second replica starting finds nothing left
    taken = await outbox.take_stale("r3", now + timedelta(seconds=1))
    assert sorted(e.key for e in taken) == ["old-1", "old-2"]
    assert all(e.owner == "r3" for e in taken)

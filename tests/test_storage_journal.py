"""The journal: accepted requests written before the ack, many to a commit, on both engines."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from storage_fixtures import DbTarget

from storage.db import Database, DatabaseUnavailable
from storage.journal import Journal, NewJournalEntry

FIELDS = {"to": "+15551234567", "body": "Hello", "account": "main"}


async def _record(journal: Journal, key: str, **changes: Any) -> None:
    values: dict[str, Any] = {
        "key": key,
        "team_id": "T1",
        "user_id": "U1",
        "channel_id": "C1",
        "response_url": "https://hooks.example/1",
        "subcommand": "send",
        "fields": FIELDS,
    }
    values.update(changes)
    await journal.record(NewJournalEntry(**values))


async def test_a_recorded_entry_is_there_for_another_process(db: Database, db_target: DbTarget) -> None:
    """Once record() returns, a second database on the same data reads the entry back whole."""
    await _record(Journal(db), "cmd:T1:1", fields={**FIELDS, "media_urls": ["https://a.example/x.png"]})
    other = await db_target.open()
    try:
        [entry] = await Journal(other).open_entries()
    finally:
        await other.close()
    assert (entry.key, entry.team_id, entry.user_id, entry.channel_id) == ("cmd:T1:1", "T1", "U1", "C1")
    assert entry.subcommand == "send" and entry.response_url == "https://hooks.example/1"
    assert dict(entry.fields) == {**FIELDS, "media_urls": ("https://a.example/x.png",)}
    assert entry.done_at is None
    assert datetime.now(UTC) - entry.accepted_at < timedelta(minutes=1)


async def test_many_concurrent_records_share_a_few_transactions(db: Database) -> None:
    """200 records at once are all written, in far fewer commits than records (group commit)."""
    journal = Journal(db)
    await asyncio.gather(*(_record(journal, f"cmd:T1:{n}") for n in range(200)))
    assert len(await journal.open_entries()) == 200
    assert 1 <= journal.transactions <= 20


async def test_records_one_after_another_each_commit(db: Database) -> None:
    """Without concurrency there is nothing to group: one commit per record, none skipped."""
    journal = Journal(db)
    for n in range(3):
        await _record(journal, f"cmd:T1:{n}")
    assert journal.transactions == 3


async def test_a_key_recorded_twice_keeps_the_first_entry(db: Database) -> None:
    """A redelivered submission does not overwrite who asked first."""
    journal = Journal(db)
    await _record(journal, "view:T1:V1")
    await _record(journal, "view:T1:V1", user_id="U2")
    [entry] = await journal.open_entries()
    assert entry.user_id == "U1"


async def test_one_key_twice_in_one_group_commit_keeps_the_first_entry(db: Database) -> None:
    """A double-click whose two deliveries share a batch: one entry, the first; the rest of the batch too."""
    journal = Journal(db)
    await asyncio.gather(
        _record(journal, "view:T1:V1"),
        _record(journal, "view:T1:V1", user_id="U2"),
        *(_record(journal, f"cmd:T1:{n}") for n in range(600)),  # more than one statement's rows
    )
    entries = await journal.open_entries()
    assert len(entries) == 601 and [e.user_id for e in entries if e.key == "view:T1:V1"] == ["U1"]
    await asyncio.gather(*(journal.finish(f"cmd:T1:{n}") for n in range(600)), journal.finish("cmd:T1:0"))
    assert [e.key for e in await journal.open_entries()] == ["view:T1:V1"]


async def test_a_worker_reads_open_keys_then_only_the_entries_it_asks_for(db: Database) -> None:
    """open_keys() lists what is not done, oldest first; open_entries_for() reads just those (and open)."""
    journal = Journal(db)
    for key in ("a", "b", "c"):
        await _record(journal, key)
    await journal.finish("b")
    assert await journal.open_keys() == ["a", "c"]
    assert [e.key for e in await journal.open_entries_for(["c", "b", "zz"])] == ["c"]


async def test_finished_entries_leave_the_open_list(db: Database) -> None:
    """finish() marks an entry done; recovery then reads only the others."""
    journal = Journal(db)
    await asyncio.gather(_record(journal, "a"), _record(journal, "b"), _record(journal, "c"))
    await asyncio.gather(journal.finish("a"), journal.finish("c"))
    assert [e.key for e in await journal.open_entries()] == ["b"]
    done = await journal.get("a")
    assert done is not None and done.done_at is not None


async def test_a_lease_round_reads_only_entries_accepted_before_its_cut_off(db: Database) -> None:
    """open_entries(accepted_before=…) leaves out what a live replica accepted a moment ago."""
    journal = Journal(db)
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    await _record(journal, "old", accepted_at=now - timedelta(minutes=5))
    await _record(journal, "new", accepted_at=now - timedelta(seconds=1))
    await _record(journal, "edge", accepted_at=now - timedelta(minutes=2))
    cut_off = now - timedelta(minutes=2)
    assert [e.key for e in await journal.open_entries(accepted_before=cut_off)] == ["old"]
    assert [e.key for e in await journal.open_entries()] == ["old", "new", "edge"]


async def test_credentials_never_go_into_the_journal(db: Database) -> None:
    """A field outside the allow-list is refused before anything is written."""
    journal = Journal(db)
    with pytest.raises(ValueError, match="not allowed"):
        await _record(journal, "k", fields={"to": "+15551234567", "auth_token": "secret"})
    assert await journal.open_entries() == []


async def test_a_database_that_cannot_write_fails_every_waiter_with_the_sentence(db: Database) -> None:
    """A failed group write reaches each waiting request as DatabaseUnavailable; nothing is half-written."""
    await db.execute("DROP TABLE journal")  # the write itself fails, on either engine
    journal = Journal(db)
    results = await asyncio.gather(*(_record(journal, f"k{n}") for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert str(results[0]) == "The bot's database is not answering; nothing was sent."


async def test_prune_deletes_only_entries_done_before_the_cut_off(db: Database) -> None:
    """Done long ago: gone; done recently or still open: kept."""
    journal = Journal(db)
    for key in ("old", "recent", "open"):
        await _record(journal, key)
    await journal.finish("old")
    await journal.finish("recent")
    await db.execute("UPDATE journal SET done_at = ? WHERE key = ?", ["2026-01-01T00:00:00+00:00", "old"])
    assert await journal.prune(done_before=datetime.now(UTC) - timedelta(days=7)) in (1, -1)
    assert await journal.get("old") is None
    assert await journal.get("recent") is not None and await journal.get("open") is not None

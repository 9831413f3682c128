"""The journal: every accepted create is written down before Slack hears "accepted".

Slack never retries a slash command or a form submission, so an acknowledged request that only lived in
memory is lost to a crash. `record()` returns once the entry is committed. Writes are grouped: entries
queued while one commit runs are written together by the next (a group commit), so a burst of commands
costs a few commits, not one each. `finish()` marks an entry done through the same batches.
Any failure of the write reaches every waiter as `DatabaseUnavailable` (its text is the user's sentence).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from storage.db import Database, DatabaseUnavailable, iso
from storage.rows import RequestRow, from_row, params

__all__ = ["FIELD_NAMES", "FieldValue", "Journal", "JournalEntry", "NewJournalEntry"]

log = logging.getLogger(__name__)

FieldValue = str | tuple[str, ...]
# What a request may carry: what the user asked for, never credentials.
FIELD_NAMES: frozenset[str] = frozenset({"to", "from", "body", "account", "service", "send_at", "media_urls"})
_COLUMNS = (
    "key",
    "team_id",
    "enterprise_id",
    "user_id",
    "channel_id",
    "response_url",
    "subcommand",
    "fields_json",
    "accepted_at",
)
# Rows (or keys) per statement: a batch is one multi-row INSERT (and one UPDATE), not a statement a row.
# Each statement the writer thread runs waits for the GIL again, up to 5 ms while the event loop is busy
# answering requests, so a statement a row made a burst's commit take tens of milliseconds.
_ROWS_PER_STATEMENT = 500


@dataclass(frozen=True, kw_only=True)
class NewJournalEntry(RequestRow):
    """An accepted request to write down: what `Journal.record` takes (`accepted_at` None: now)."""

    subcommand: str
    fields: Mapping[str, str | Sequence[str] | None]
    accepted_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class JournalEntry(RequestRow):
    """One accepted request: who, where, and what was asked (the subcommand and its fields)."""

    id: int
    subcommand: str
    fields: Mapping[str, FieldValue]
    accepted_at: datetime
    done_at: datetime | None


def _fields_json(fields: Mapping[str, str | Sequence[str] | None]) -> str:
    clean: dict[str, str | list[str]] = {}
    for name, value in fields.items():
        if name not in FIELD_NAMES:
            raise ValueError(
                f"The journal stores only {', '.join(sorted(FIELD_NAMES))}; {name!r} is not allowed."
            )
        if value is None:
            continue
        if isinstance(value, str):
            clean[name] = value
        elif all(isinstance(item, str) for item in value):
            clean[name] = list(value)
        else:
            raise ValueError(f"The journal field {name!r} must be text or a list of text.")
    return json.dumps(clean, sort_keys=True, ensure_ascii=False)


def _entry(row: Mapping[str, Any]) -> JournalEntry:
    raw = json.loads(str(row["fields_json"]))
    fields = {name: tuple(value) if isinstance(value, list) else str(value) for name, value in raw.items()}
    return from_row(JournalEntry, row, fields=MappingProxyType(fields))


class Journal:
    """Accepted requests, written in groups; `transactions` counts the commits (to see the grouping).

    Entries queue into the next batch. A batch starts at once when none is being written; otherwise
    it starts the moment the one being written commits, with everything that queued meanwhile. Each
    waiter awaits its batch's future, set in the loop turn after the commit.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._inserts: list[dict[str, Any]] = []
        self._finishes: list[str] = []
        self._next: asyncio.Future[None] | None = None  # the queued batch's, once something is queued
        self._writing = False
        self.transactions = 0

    async def record(self, entry: NewJournalEntry) -> None:
        """Write the request down; returns once it is committed. A key seen before is left as it was.

        Raises DatabaseUnavailable when the write failed (nothing was written), ValueError for a field
        outside the allow-list.
        """
        if not entry.key:
            raise ValueError("A journal entry needs a non-empty idempotency key.")
        row = params(
            entry,
            leave_out={"fields"},
            fields_json=_fields_json(entry.fields),
            accepted_at=iso(entry.accepted_at or datetime.now(UTC)),
        )
        self._inserts.append(row)
        await asyncio.shield(self._queued())

    async def finish(self, key: str) -> None:
        """Mark the entry done (its create reached the outbox, or it ended before); returns once committed."""
        self._finishes.append(key)
        await asyncio.shield(self._queued())

    async def open_entries(self, *, accepted_before: datetime | None = None) -> list[JournalEntry]:
        """Entries not yet done, oldest first (for recovery); only those accepted before
        `accepted_before` when given (what a replica that died left, not what a live one is running)."""
        if accepted_before is None:
            rows = await self._db.fetch_all("SELECT * FROM journal WHERE done_at IS NULL ORDER BY id")
        else:
            rows = await self._db.fetch_all(
                "SELECT * FROM journal WHERE done_at IS NULL AND accepted_at < ? ORDER BY id",
                [iso(accepted_before)],
            )
        return [_entry(row) for row in rows]

    async def open_keys(self) -> list[str]:
        """The keys of the entries not yet done, oldest first: the cheap read a worker polls with."""
        rows = await self._db.fetch_all("SELECT key FROM journal WHERE done_at IS NULL ORDER BY id")
        return [str(row["key"]) for row in rows]

    async def open_entries_for(self, keys: Sequence[str]) -> list[JournalEntry]:
        """The entries among `keys` not yet done, oldest first."""
        found: list[JournalEntry] = []
        for chunk in _chunks(keys):
            marks = ", ".join("?" * len(chunk))
            rows = await self._db.fetch_all(
                f"SELECT * FROM journal WHERE done_at IS NULL AND key IN ({marks}) ORDER BY id",  # noqa: S608 - only placeholders
                chunk,
            )
            found.extend(_entry(row) for row in rows)
        return sorted(found, key=lambda entry: entry.id)

    async def prune(self, *, done_before: datetime) -> int:
        """Delete the entries done before `done_before` (what was asked, bodies included, is not kept
        longer than needed); returns how many (-1 when the engine does not say)."""
        return await self._db.execute(
            "DELETE FROM journal WHERE done_at IS NOT NULL AND done_at < ?", [iso(done_before)]
        )

    async def get(self, key: str) -> JournalEntry | None:
        """The entry for `key`, or None."""
        row = await self._db.fetch_one("SELECT * FROM journal WHERE key = ?", [key])
        return None if row is None else _entry(row)

    def _queued(self) -> asyncio.Future[None]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        batch = self._next
        if not self._writing:
            self._start()
        return batch

    def _start(self) -> None:
        inserts, self._inserts = self._inserts, []
        finishes, self._finishes = self._finishes, []
        batch, self._next = self._next, None
        assert batch is not None
        self._writing = True
        now = iso(datetime.now(UTC))

        def written(error: BaseException | None) -> None:
            self._writing = False
            if error is None:
                self.transactions += 1
                if not batch.done():
                    batch.set_result(None)
            else:
                log.warning("the journal could not be written: %s", type(error).__name__)
                if not batch.done():
                    batch.set_exception(_unavailable(error))
            if self._inserts or self._finishes:
                self._start()

        try:
            self._db.start_batches(_statements(inserts, finishes, now), written)
        except Exception as err:  # a closed database: refused before anything was handed over
            written(err)


def _statements(
    inserts: Sequence[Mapping[str, Any]], finishes: Sequence[str], now: str
) -> list[tuple[str, list[list[Any]]]]:
    """A batch's writes as few statements: multi-row INSERTs, then UPDATEs of many keys."""
    first: dict[str, Mapping[str, Any]] = {}
    for row in inserts:  # a key twice in one batch (a double-click): the first delivery's entry
        first.setdefault(str(row["key"]), row)
    fresh = list(first.values())
    statements: list[tuple[str, list[list[Any]]]] = []
    for rows in _chunks(fresh):
        marks = ", ".join(["(" + ", ".join("?" * len(_COLUMNS)) + ")"] * len(rows))
        sql = f"INSERT INTO journal ({', '.join(_COLUMNS)}) VALUES {marks} ON CONFLICT (key) DO NOTHING"  # noqa: S608
        statements.append((sql, [[row[column] for row in rows for column in _COLUMNS]]))
    for keys in _chunks(list(dict.fromkeys(finishes))):
        marks = ", ".join("?" * len(keys))
        sql = f"UPDATE journal SET done_at = ? WHERE done_at IS NULL AND key IN ({marks})"  # noqa: S608
        statements.append((sql, [[now, *keys]]))
    return statements


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[start : start + _ROWS_PER_STATEMENT] for start in range(0, len(items), _ROWS_PER_STATEMENT)]


def _unavailable(error: BaseException) -> DatabaseUnavailable:
    if isinstance(error, DatabaseUnavailable):
        return error
    return DatabaseUnavailable(detail=f"{type(error).__name__}: {error}")

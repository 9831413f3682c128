"""The journal: every accepted create is written down before Slack hears "accepted".

Slack never retries a slash command or a form submission, so an acknowledged request that only lived in
memory is lost to a crash. `record()` returns once the entry is committed. Writes are grouped: entries
queue up and one flusher writes everything queued in one transaction (a group commit), so a burst of
commands costs a few commits, not one each. `finish()` marks an entry done through the same flusher.
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

__all__ = ["FIELD_NAMES", "FieldValue", "Journal", "JournalEntry"]

log = logging.getLogger(__name__)

FieldValue = str | tuple[str, ...]
# What a request may carry: what the user asked for, never credentials.
FIELD_NAMES: frozenset[str] = frozenset({"to", "from", "body", "account", "service", "send_at", "media_urls"})
_INSERT = (
    "INSERT INTO journal (key, team_id, enterprise_id, user_id, channel_id, response_url, subcommand, "
    "fields_json, accepted_at) VALUES (:key, :team_id, :enterprise_id, :user_id, :channel_id, "
    ":response_url, :subcommand, :fields_json, :accepted_at) ON CONFLICT (key) DO NOTHING"
)
_FINISH = "UPDATE journal SET done_at = ? WHERE key = ? AND done_at IS NULL"


@dataclass(frozen=True)
class JournalEntry:
    """One accepted request: who, where, and what was asked (the subcommand and its fields)."""

    id: int
    key: str
    team_id: str
    enterprise_id: str | None
    user_id: str
    channel_id: str | None
    response_url: str | None
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
    return JournalEntry(
        id=int(row["id"]),
        key=str(row["key"]),
        team_id=str(row["team_id"]),
        enterprise_id=row["enterprise_id"],
        user_id=str(row["user_id"]),
        channel_id=row["channel_id"],
        response_url=row["response_url"],
        subcommand=str(row["subcommand"]),
        fields=MappingProxyType(fields),
        accepted_at=datetime.fromisoformat(str(row["accepted_at"])),
        done_at=None if row["done_at"] is None else datetime.fromisoformat(str(row["done_at"])),
    )


class Journal:
    """Accepted requests, written in groups; `transactions` counts the commits (to see the grouping)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._inserts: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._finishes: list[tuple[str, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0

    async def record(
        self,
        *,
        key: str,
        team_id: str,
        user_id: str,
        subcommand: str,
        fields: Mapping[str, str | Sequence[str] | None],
        channel_id: str | None = None,
        response_url: str | None = None,
        enterprise_id: str | None = None,
        accepted_at: datetime | None = None,
    ) -> None:
        """Write the request down; returns once it is committed. A key seen before is left as it was.

        Raises DatabaseUnavailable when the write failed (nothing was written), ValueError for a field
        outside the allow-list.
        """
        if not key:
            raise ValueError("A journal entry needs a non-empty idempotency key.")
        row = {
            "key": key,
            "team_id": team_id,
            "enterprise_id": enterprise_id,
            "user_id": user_id,
            "channel_id": channel_id,
            "response_url": response_url,
            "subcommand": subcommand,
            "fields_json": _fields_json(fields),
            "accepted_at": iso(accepted_at or datetime.now(UTC)),
        }
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inserts.append((row, future))
        self._kick()
        await asyncio.shield(future)

    async def finish(self, key: str) -> None:
        """Mark the entry done (its create reached the outbox, or it ended before); returns once committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finishes.append((key, future))
        self._kick()
        await asyncio.shield(future)

    async def open_entries(self) -> list[JournalEntry]:
        """Entries not yet done, oldest first (for start-up recovery)."""
        rows = await self._db.fetch_all("SELECT * FROM journal WHERE done_at IS NULL ORDER BY id")
        return [_entry(row) for row in rows]

    async def get(self, key: str) -> JournalEntry | None:
        """The entry for `key`, or None."""
        row = await self._db.fetch_one("SELECT * FROM journal WHERE key = ?", [key])
        return None if row is None else _entry(row)

    def _kick(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="journal flush")

    async def _flush(self) -> None:
        # Whatever queued while one transaction ran goes into the next one.
        while self._inserts or self._finishes:
            inserts, self._inserts = self._inserts, []
            finishes, self._finishes = self._finishes, []
            waiters = [future for _, future in inserts] + [future for _, future in finishes]
            try:
                now = iso(datetime.now(UTC))
                await self._db.write_batches(
                    [
                        (_INSERT, [row for row, _ in inserts]),
                        (_FINISH, [[now, key] for key, _ in finishes]),
                    ]
                )
                self.transactions += 1
            except Exception as err:
                log.warning("the journal could not be written: %s", type(err).__name__)
                failure = (
                    err
                    if isinstance(err, DatabaseUnavailable)
                    else DatabaseUnavailable(detail=f"{type(err).__name__}: {err}")
                )
                for future in waiters:
                    if not future.done():
                        future.set_exception(failure)
                continue
            for future in waiters:
                if not future.done():
                    future.set_result(None)

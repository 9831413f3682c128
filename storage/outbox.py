"""The outbox: one row per send or schedule, claimed by an idempotency key before Twilio is called.

Whoever inserts the key first (this process, another replica, or an earlier delivery of the same
Slack request) owns the call; everyone else sees `created=False` and must not call Twilio. The
stored request holds only what was asked for (to, from, service, body, send time, media), never
credentials: its keys are checked against an allow-list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, get_args

from storage.db import Database, Queries, iso, utc_now
from storage.rows import RequestRow, from_row, params

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "REQUEST_KEYS",
    "NewOutboxEntry",
    "Operation",
    "Outbox",
    "OutboxEntry",
    "RequestValue",
    "Settlement",
    "State",
]

State = Literal["pending", "sent", "failed", "unknown"]
Operation = Literal["send", "schedule"]
RequestValue = str | int | None | tuple[str, ...]
REQUEST_KEYS: frozenset[str] = frozenset({"to", "from", "service", "body", "send_at", "media_urls"})
_STATES: frozenset[str] = frozenset(get_args(State))
_OPERATIONS: frozenset[str] = frozenset(get_args(Operation))
# Long enough to cover a create with its retries and the card, short enough that a crashed replica's
# rows are taken over within minutes.
DEFAULT_LEASE_SECONDS = 120.0
_CLAIM = (
    "INSERT INTO outbox (key, team_id, enterprise_id, user_id, channel_id, response_url, "
    "account_label, account_sid, operation, request_json, state, created_at, card_posted, attempts, "
    "owner, lease_until) "
    "VALUES (:key, :team_id, :enterprise_id, :user_id, :channel_id, :response_url, :account_label, "
    ":account_sid, :operation, :request_json, 'pending', :created_at, 0, 1, :owner, :lease_until) "
    "ON CONFLICT (key) DO NOTHING RETURNING *"
)
_STALE = (
    "SELECT id FROM outbox WHERE card_posted = 0 AND lease_until IS NOT NULL AND lease_until < ? "
    "ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED"
)
_TAKE = "UPDATE outbox SET owner = ?, lease_until = ?, attempts = attempts + 1 WHERE id = ? RETURNING *"


@dataclass(frozen=True, kw_only=True)
class NewOutboxEntry(RequestRow):
    """A send or schedule to claim: what `Outbox.claim` takes.

    `operation` is "send" or "schedule"; `request` holds only the keys of `REQUEST_KEYS`.
    """

    channel_id: str
    operation: str
    request: Mapping[str, str | int | Sequence[str] | None]
    account_label: str | None
    account_sid: str | None


@dataclass(frozen=True)
class Settlement:
    """How a claimed call ended, as `Outbox.settle` records it: "sent" (with Twilio's message SID),
    "failed" or "unknown" (it may have been applied), with Twilio's error when there was one.

    Any other state raises ValueError.
    """

    state: str
    message_sid: str | None = None
    error_code: int | None = None
    error_message: str | None = None

    def __post_init__(self) -> None:
        if self.state not in _STATES or self.state == "pending":
            raise ValueError(f"An outbox entry settles as 'sent', 'failed' or 'unknown', not {self.state!r}.")


@dataclass(frozen=True, kw_only=True)
class OutboxEntry(RequestRow):
    """One claimed send or schedule and, once settled, what Twilio said."""

    id: int
    channel_id: str
    account_label: str | None
    account_sid: str | None
    operation: Operation
    request: Mapping[str, RequestValue]
    state: State
    message_sid: str | None
    error_code: int | None
    error_message: str | None
    created_at: datetime
    settled_at: datetime | None
    card_posted: bool
    attempts: int
    owner: str | None = None
    lease_until: datetime | None = None


def _request_json(request: Mapping[str, str | int | Sequence[str] | None]) -> str:
    """Serialise the request after checking every key is allowed and every value is plain."""
    clean: dict[str, str | int | list[str] | None] = {}
    for name, value in request.items():
        if name not in REQUEST_KEYS:
            raise ValueError(
                f"The outbox stores only {', '.join(sorted(REQUEST_KEYS))}; {name!r} is not allowed "
                "(credentials never go into the outbox)."
            )
        if value is None or isinstance(value, str | int):
            clean[name] = value
        elif isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
            clean[name] = list(value)
        else:
            raise ValueError(
                f"The outbox request value for {name!r} must be text, a number or a list of text."
            )
    return json.dumps(clean, sort_keys=True, ensure_ascii=False)


def _request(text: str) -> Mapping[str, RequestValue]:
    raw = json.loads(text)
    values: dict[str, RequestValue] = {
        name: tuple(value) if isinstance(value, list) else value for name, value in raw.items()
    }
    return MappingProxyType(values)


def _entry(row: Mapping[str, Any]) -> OutboxEntry:
    return from_row(OutboxEntry, row, request=_request(str(row["request_json"])))


async def _by_key(db: Queries, key: str) -> OutboxEntry | None:
    row = await db.fetch_one("SELECT * FROM outbox WHERE key = ?", [key])
    return None if row is None else _entry(row)


def _lease_end(now: datetime, lease_seconds: float) -> str:
    if lease_seconds <= 0:
        raise ValueError("A lease must last a positive number of seconds.")
    return iso(now + timedelta(seconds=lease_seconds))


class Outbox:
    """Idempotent claims on sends and schedules, and their outcomes.

    A claim may carry a lease: `owner` (the replica) holds the row until `lease_until` and extends it
    with `renew`; once it runs out, another replica's reconciler takes the row with `take_stale`.
    A row leaves leasing when its card is posted.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, entry: NewOutboxEntry, *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> tuple[OutboxEntry, bool]:
        """Claim `entry.key`: (entry, True) if this call created it, else (the existing entry, False).

        Only the caller that gets True may call Twilio. With an `owner`, the new row is leased to it for
        `lease_seconds`; without one it has no lease and only start-up recovery (`pending`, `unposted`)
        picks it up. Raises ValueError for a request key outside the allow-list or an unknown operation.
        """
        key = entry.key
        if not key:
            raise ValueError("An outbox claim needs a non-empty idempotency key.")
        if entry.operation not in _OPERATIONS:
            raise ValueError(f"The outbox takes 'send' or 'schedule', not {entry.operation!r}.")
        now = datetime.now(UTC)
        row = params(
            entry,
            leave_out={"request"},
            request_json=_request_json(entry.request),
            created_at=iso(now),
            owner=owner,
            lease_until=None if owner is None else _lease_end(now, lease_seconds),
        )
        # Whoever inserts first gets the row back; a key already there returns nothing, and rows are
        # never deleted, so reading it next cannot miss.
        created = await self._db.fetch_one(_CLAIM, row)
        if created is not None:
            return _entry(created), True
        existing = await _by_key(self._db, key)
        assert existing is not None
        return existing, False

    async def renew(
        self,
        key: str,
        *,
        owner: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        now: datetime | None = None,
    ) -> bool:
        """Extend `owner`'s lease on `key` to `lease_seconds` from now; False if it is no longer theirs.

        False means another replica took the row over (or its card is posted): stop working on it.
        """
        until = _lease_end(now or datetime.now(UTC), lease_seconds)
        changed = await self._db.execute(
            "UPDATE outbox SET lease_until = ? WHERE key = ? AND owner = ? AND card_posted = 0",
            [until, key, owner],
        )
        return changed == 1

    async def take_stale(
        self,
        owner: str,
        now: datetime | None = None,
        limit: int = 100,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> list[OutboxEntry]:
        """Take over up to `limit` rows whose lease ran out before `now` and whose card is not posted.

        Each taken row is leased to `owner` for `lease_seconds` and counts one more attempt; oldest
        first. Two replicas taking at once never get the same row: on PostgreSQL the rows are
        locked with SKIP LOCKED, on SQLite the immediate transaction admits one taker at a time.
        """
        moment = now or datetime.now(UTC)
        cutoff, until = iso(moment), _lease_end(moment, lease_seconds)
        limit = max(1, min(int(limit), 1000))
        taken: list[OutboxEntry] = []
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(_STALE, [cutoff, limit])
            for row in rows:
                updated = await tx.fetch_one(_TAKE, [owner, until, row["id"]])
                assert updated is not None
                taken.append(_entry(updated))
        return taken

    async def expire_unowned(self, owner: str, now: datetime | None = None) -> int:
        """Give rows claimed without an owner, card not posted, to `owner` with a lease already run out.

        Such rows come from a single-process bot (or a database copied from SQLite); once expired,
        `take_stale` on any replica takes them like a dead replica's. Each row changes once, whoever
        calls first, so replicas starting together cannot both settle it. Returns how many.
        """
        return await self._db.execute(
            "UPDATE outbox SET owner = ?, lease_until = ? WHERE card_posted = 0 AND owner IS NULL",
            [owner, iso(now or datetime.now(UTC))],
        )

    async def settle(self, key: str, outcome: Settlement) -> None:
        """Record how the claimed call of `key` ended."""
        await self._db.execute(
            "UPDATE outbox SET state = :state, message_sid = :message_sid, error_code = :error_code, "
            "error_message = :error_message, settled_at = :settled_at WHERE key = :key",
            params(outcome, settled_at=utc_now(), key=key),
        )

    async def mark_card_posted(self, key: str) -> None:
        """Note that the result card for `key` reached Slack, so nobody posts it again (the lease ends)."""
        await self._db.execute("UPDATE outbox SET card_posted = 1, lease_until = NULL WHERE key = ?", [key])

    async def pending(self) -> list[OutboxEntry]:
        """Entries still waiting for an outcome, oldest first (for recovery after a crash)."""
        rows = await self._db.fetch_all("SELECT * FROM outbox WHERE state = 'pending' ORDER BY id")
        return [_entry(row) for row in rows]

    async def count_pending(self) -> int:
        """How many entries wait for an outcome now: one indexed count, cheap enough for every scrape."""
        row = await self._db.fetch_one("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'")
        return int(row["n"]) if row else 0

    async def unposted(self) -> list[OutboxEntry]:
        """Entries whose result card never reached Slack (any state), oldest first, for start-up recovery."""
        rows = await self._db.fetch_all("SELECT * FROM outbox WHERE card_posted = 0 ORDER BY id")
        return [_entry(row) for row in rows]

    async def sid_recorded(self, sid: str, *, other_than: str) -> bool:
        """Whether a row other than `other_than` already records `sid` as its message.

        A lookup for a create whose answer was lost must not pin one message on two user actions.
        """
        row = await self._db.fetch_one(
            "SELECT 1 AS found FROM outbox WHERE message_sid = ? AND key != ? LIMIT 1", [sid, other_than]
        )
        return row is not None

    async def get(self, key: str) -> OutboxEntry | None:
        """The entry for `key`, or None."""
        return await _by_key(self._db, key)

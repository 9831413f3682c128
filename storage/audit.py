"""The audit log: who ran which Twilio operation, on which account, and what came of it.

It never receives secrets by design (no parameter carries one). As defence in depth, anything that
looks like a bare Twilio auth token or API secret (32 hex characters not part of a SID) is redacted
from the free-text fields before they are stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, get_args

from storage.db import Database, iso, utc_now
from storage.rows import from_row, params

__all__ = [
    "AuditEntry",
    "AuditLog",
    "DayOutcomes",
    "ErrorCount",
    "NewAuditEntry",
    "Outcome",
    "redact",
]

Outcome = Literal["ok", "error", "unknown", "rejected"]
_OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))
_BARE_TOKEN = re.compile(r"(?<![A-Za-z0-9])[0-9A-Fa-f]{32}(?![A-Za-z0-9])")
_MAX_TEXT = 500
_INSERT = (
    "INSERT INTO audit (at, team_id, enterprise_id, user_id, channel_id, operation, account_label, "
    "account_sid, summary, outcome, message_sid, error_code, error_message) VALUES (:at, :team_id, "
    ":enterprise_id, :user_id, :channel_id, :operation, :account_label, :account_sid, :summary, "
    ":outcome, :message_sid, :error_code, :error_message) RETURNING id"
)
_RECENT = "SELECT * FROM audit WHERE team_id = ? ORDER BY id DESC LIMIT ?"


def redact(text: str) -> str:
    """Replace anything shaped like a bare auth token or API secret with `[redacted]`."""
    return _BARE_TOKEN.sub("[redacted]", text)


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    text = redact(text)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class AuditEntry:
    """One recorded operation."""

    id: int
    at: datetime
    team_id: str
    enterprise_id: str | None
    user_id: str
    channel_id: str
    operation: str
    account_label: str | None
    account_sid: str | None
    summary: str
    outcome: Outcome
    message_sid: str | None
    error_code: int | None
    error_message: str | None


@dataclass(frozen=True)
class NewAuditEntry:
    """An operation to record: what `AuditLog.record` takes.

    `outcome` is "ok", "error", "unknown" (a create that may have been applied) or "rejected"
    (refused before Twilio was called).
    """

    team_id: str
    user_id: str
    channel_id: str
    operation: str
    outcome: str
    account_label: str | None = None
    account_sid: str | None = None
    summary: str = ""
    message_sid: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    enterprise_id: str | None = None


class AuditLog:
    """Append-only record of Twilio operations per workspace."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entry: NewAuditEntry) -> int:
        """Store one entry and return its id; an outcome other than the four known raises ValueError."""
        if entry.outcome not in _OUTCOMES:
            raise ValueError(
                f"Audit outcome must be one of {', '.join(sorted(_OUTCOMES))}, not {entry.outcome!r}."
            )
        row = params(
            entry, at=utc_now(), summary=_clip(entry.summary) or "", error_message=_clip(entry.error_message)
        )
        inserted = await self._db.fetch_one(_INSERT, row)
        assert inserted is not None
        return int(inserted["id"])

    async def recent(self, team_id: str, limit: int = 10) -> list[AuditEntry]:
        """The team's latest entries, newest first."""
        limit = max(1, min(int(limit), 1000))
        return [from_row(AuditEntry, row) for row in await self._db.fetch_all(_RECENT, [team_id, limit])]

    async def outcomes_by_day(self, team_id: str, since: datetime) -> list[DayOutcomes]:
        """Sends and schedules per UTC day and outcome since `since` (days without any are left out)."""
        rows = await self._db.fetch_all(
            "SELECT substr(at, 1, 10) AS day, outcome, COUNT(*) AS n FROM audit "
            "WHERE team_id = ? AND at >= ? AND operation IN ('send', 'schedule') "
            "GROUP BY substr(at, 1, 10), outcome",
            [team_id, iso(since)],
        )
        return [DayOutcomes(date.fromisoformat(str(r["day"])), str(r["outcome"]), int(r["n"])) for r in rows]

    async def top_errors(self, team_id: str, since: datetime, limit: int = 5) -> list[ErrorCount]:
        """The Twilio error codes met most often since `since`, most frequent first."""
        rows = await self._db.fetch_all(
            "SELECT error_code, COUNT(*) AS n, MAX(error_message) AS message FROM audit WHERE team_id = ? "
            "AND at >= ? AND error_code IS NOT NULL GROUP BY error_code ORDER BY COUNT(*) DESC, error_code "
            "LIMIT ?",
            [team_id, iso(since), max(1, min(int(limit), 100))],
        )
        return [ErrorCount(int(r["error_code"]), int(r["n"]), r["message"]) for r in rows]

    async def recent_by_user(self, team_id: str, user_id: str, limit: int = 5) -> list[AuditEntry]:
        """One user's latest entries in the team, newest first."""
        rows = await self._db.fetch_all(
            "SELECT * FROM audit WHERE team_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            [team_id, user_id, max(1, min(int(limit), 100))],
        )
        return [from_row(AuditEntry, row) for row in rows]


@dataclass(frozen=True)
class DayOutcomes:
    """How many sends and schedules of one UTC day ended with one outcome."""

    day: date
    outcome: str
    count: int


@dataclass(frozen=True)
class ErrorCount:
    """A Twilio error code, how often it was met, and Twilio's last words for it (cleaned)."""

    code: int
    count: int
    message: str | None

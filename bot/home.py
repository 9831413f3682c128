"""What a Home tab shows: the workspace's accounts and routes, a week of sends, top Twilio errors, your
last operations.

Read from the workspace's own rows only (every query is filtered by team). Nothing here knows Slack; the
Slack door turns a `HomeSummary` into a view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bot.twilio.errors import clean_text, hint_for
from storage.accounts import AccountStore, StoredAccount
from storage.audit import AuditEntry, AuditLog, ErrorCount
from storage.conversations import ConversationStore, Route

__all__ = ["DaySends", "Home", "HomeSummary", "TopError", "sparkline"]

DAYS = 7
BARS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class DaySends:
    """One UTC day's sends and schedules: accepted by Twilio, failed (or refused), outcome unknown."""

    day: date
    sent: int = 0
    failed: int = 0
    other: int = 0


@dataclass(frozen=True)
class TopError(ErrorCount):
    """A Twilio error met this week, and what it means in plain words."""

    words: str


@dataclass(frozen=True)
class HomeSummary:
    """Everything one person's Home tab shows for one workspace."""

    accounts: list[StoredAccount]
    days: list[DaySends]
    errors: list[TopError]
    mine: list[AuditEntry]
    # Who set up the workspace's accounts: people to ask for a change.
    account_admins: list[str]
    # Which of our numbers open threads in which channel.
    routes: list[Route] = field(default_factory=list)


def sparkline(values: list[int]) -> str:
    """One character a value, scaled to the largest: a blank for 0, ▁ … █ otherwise."""
    top = max(values, default=0)
    if top == 0:
        return " " * len(values)
    return "".join(" " if v == 0 else BARS[min(len(BARS) - 1, (v * len(BARS) - 1) // top)] for v in values)


def _words(code: int, message: str | None) -> str:
    hint = hint_for(code)
    if hint:
        return hint
    if message:
        return f"Twilio said: {clean_text(message, 160)}"
    return "Twilio gave no explanation for this code."


class Home:
    """Builds the Home tab's summary of a workspace."""

    def __init__(
        self,
        *,
        accounts: AccountStore,
        audit: AuditLog,
        routes: ConversationStore | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._accounts = accounts
        self._audit = audit
        self._routes = routes
        # The audit log is stamped with the wall clock, so the week is counted on it too.
        self._now = now or (lambda: datetime.now(UTC))

    async def summary(self, team_id: str, user_id: str) -> HomeSummary:
        """The workspace's accounts, the last 7 days by outcome, its top 5 errors, the viewer's last 5."""
        today = self._now().astimezone(UTC).date()
        first = today - timedelta(days=DAYS - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        counts: dict[date, dict[str, int]] = {first + timedelta(days=n): {} for n in range(DAYS)}
        for row in await self._audit.outcomes_by_day(team_id, since):
            if row.day in counts:
                counts[row.day][row.outcome] = counts[row.day].get(row.outcome, 0) + row.count
        days = [
            DaySends(
                day=day,
                sent=by.get("ok", 0),
                failed=by.get("error", 0) + by.get("rejected", 0),
                other=by.get("unknown", 0),
            )
            for day, by in counts.items()
        ]
        errors = [
            TopError(e.code, e.count, e.message, _words(e.code, e.message))
            for e in await self._audit.top_errors(team_id, since, 5)
        ]
        accounts = await self._accounts.list(team_id)
        admins = sorted({a.added_by for a in accounts if a.added_by and not a.added_by.startswith("cli")})
        mine = await self._audit.recent_by_user(team_id, user_id, 5)
        routes = await self._routes.routes(team_id) if self._routes is not None else []
        return HomeSummary(accounts, days, errors, mine, admins, sorted(routes, key=lambda r: r.number))

"""The cards that announced messages, and each message's newest status: what live delivery status needs.

One row per message the bot announced in Slack. `status_rank` orders the statuses (the caller says
which rank a status has); `advance` only ever raises it, in one statement, so two callbacks racing on
two replicas can never move a card backwards. `shown_status` is what the card in Slack says now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.db import Database, iso, utc_now
from storage.rows import from_row, params

__all__ = ["MessageCard", "MessageCards", "NewMessageCard"]

_OPEN = (
    "INSERT INTO message_cards (message_sid, team_id, account_sid, account_label, status, status_rank, "
    "error_code, status_at, card_json, created_at, updated_at) VALUES (:message_sid, :team_id, "
    ":account_sid, :account_label, :status, :status_rank, :error_code, :status_at, :card_json, "
    ":status_at, :now) "
    "ON CONFLICT (message_sid) DO NOTHING"
)
# Raised only: a rank at or below `below` moves to `rank`; anything else (late, repeated) changes nothing.
_ADVANCE = (
    "UPDATE message_cards SET status = :status, status_rank = :rank, error_code = :error_code, "
    "status_at = :at, updated_at = :now WHERE message_sid = :message_sid AND account_sid = :account_sid "
    "AND status_rank < :below "
    "RETURNING *"
)


@dataclass(frozen=True)
class NewMessageCard:
    """A message Twilio just accepted, to track before its card is out: what `MessageCards.open` takes.

    `status_at` (the caller's clock) is also when tracking began: `open_since` compares with it.
    """

    message_sid: str
    team_id: str
    account_sid: str
    account_label: str
    status: str
    status_rank: int
    error_code: int | None
    status_at: datetime
    card_json: str


@dataclass(frozen=True)
class MessageCard:
    """Where a message's card is, and what Twilio last said about the message."""

    message_sid: str
    team_id: str
    account_sid: str
    account_label: str
    channel_id: str | None
    card_ts: str | None
    log_channel_id: str | None
    log_ts: str | None
    via_response_url: bool
    status: str
    status_rank: int
    error_code: int | None
    status_at: datetime
    shown_status: str | None
    card_json: str
    created_at: datetime


class MessageCards:
    """Track announced messages: open one, note where its card went, advance its status, mark it shown."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def open(self, card: NewMessageCard) -> bool:
        """Start tracking a message Twilio just accepted (before its card is out); False if tracked before."""
        changed = await self._db.execute(_OPEN, params(card, status_at=iso(card.status_at), now=utc_now()))
        return changed > 0

    async def posted(
        self,
        message_sid: str,
        *,
        channel_id: str | None,
        card_ts: str | None,
        log_channel_id: str | None,
        log_ts: str | None,
        shown_status: str,
    ) -> MessageCard | None:
        """Note where the card (and its log copy) went and which status it shows; None if untracked.

        A card without a ts went through a response_url: it cannot be edited later.
        """
        rows = await self._db.fetch_all(
            "UPDATE message_cards SET channel_id = ?, card_ts = ?, log_channel_id = ?, log_ts = ?, "
            "via_response_url = ?, shown_status = ?, updated_at = ? WHERE message_sid = ? RETURNING *",
            [
                channel_id,
                card_ts,
                log_channel_id,
                log_ts,
                1 if card_ts is None else 0,
                shown_status,
                utc_now(),
                message_sid,
            ],
        )
        return from_row(MessageCard, rows[0]) if rows else None

    async def advance(
        self,
        message_sid: str,
        *,
        account_sid: str,
        status: str,
        rank: int,
        below: int,
        error_code: int | None,
        at: datetime,
    ) -> MessageCard | None:
        """Move the message to `status` (rank `rank`) if its rank is below `below`; the row, or None.

        None when the message is unknown (or belongs to another account), or the report is late or
        repeated: nothing was changed.
        """
        rows = await self._db.fetch_all(
            _ADVANCE,
            {
                "message_sid": message_sid,
                "account_sid": account_sid,
                "status": status,
                "rank": rank,
                "below": below,
                "error_code": error_code,
                "at": iso(at),
                "now": utc_now(),
            },
        )
        return from_row(MessageCard, rows[0]) if rows else None

    async def get(self, message_sid: str) -> MessageCard | None:
        """The tracked message, or None."""
        row = await self._db.fetch_one("SELECT * FROM message_cards WHERE message_sid = ?", [message_sid])
        return None if row is None else from_row(MessageCard, row)

    async def forget(self, message_sid: str) -> None:
        """Stop tracking the message (its card no longer shows it)."""
        await self._db.execute("DELETE FROM message_cards WHERE message_sid = ?", [message_sid])

    async def shown(self, message_sid: str, status: str) -> None:
        """The card in Slack now shows `status`."""
        await self._db.execute(
            "UPDATE message_cards SET shown_status = ?, updated_at = ? WHERE message_sid = ?",
            [status, utc_now(), message_sid],
        )

    async def open_since(self, since: datetime, *, below_rank: int) -> list[MessageCard]:
        """Messages tracked since `since` whose status ranks below `below_rank` or whose card lags."""
        rows = await self._db.fetch_all(
            "SELECT * FROM message_cards WHERE created_at >= ? AND "
            "(status_rank < ? OR shown_status IS NULL OR shown_status <> status) ORDER BY created_at",
            [iso(since), below_rank],
        )
        return [from_row(MessageCard, row) for row in rows]

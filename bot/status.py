"""Live delivery status: each announced message's status moves forward only, and its card follows, coalesced.

Twilio reports every status a message takes to its StatusCallback, possibly late, out of order or twice.
Statuses rank accepted|scheduled < queued < sending < sent < delivered|undelivered|failed < read, and
canceled ends it: a report is applied only if it ranks above what is stored (one conditional UPDATE), so a
late or repeated one changes nothing and costs no Slack call. Cards are redrawn at most once per
`interval` seconds each, always with the newest status, until the card shows what is stored; a
`RetryLater` from the renderer (Slack's 429) pauses that workspace's updates for as long as it asks.
Nothing here knows Slack: the door gives a `CardRenderer`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Final, Protocol

from bot.tasks import ShuttingDown, TaskTracker
from bot.twilio.models import Message
from storage.message_cards import MessageCard, MessageCards, NewMessageCard

__all__ = [
    "CANCELED",
    "FINAL_RANK",
    "REFRESH_WINDOW",
    "CardFacts",
    "CardRenderer",
    "LiveCard",
    "LiveStatus",
    "MessageCard",
    "RetryLater",
    "StatusReport",
    "advance_rule",
    "parse_status_report",
]

log = logging.getLogger(__name__)

STATUS_RANKS: Final[Mapping[str, int]] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}
CANCELED: Final = "canceled"
_CANCELED_RANK: Final = 99
FINAL_RANK: Final = 4
# Statuses Twilio reports for messages the bot never announces (inbound ones): acknowledged, ignored.
_NOT_OURS: Final = frozenset({"receiving", "received", "partially_delivered"})
REFRESH_WINDOW: Final = timedelta(hours=24)
_MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-fA-F]{32}")
_ERROR_CODE = re.compile(r"[0-9]{1,6}")


def advance_rule(status: str) -> tuple[int, int]:
    """(rank to store, the stored rank must be below this) for a known status; KeyError otherwise."""
    if status == CANCELED:
        return _CANCELED_RANK, FINAL_RANK  # cancels what has not finished; nothing comes after it
    rank = STATUS_RANKS[status]
    return rank, rank


def rank_of(status: str) -> int | None:
    """The rank of `status`, or None for a status outside the order."""
    if status == CANCELED:
        return _CANCELED_RANK
    return STATUS_RANKS.get(status)


@dataclass(frozen=True)
class StatusReport:
    """One status callback: the message, the account it belongs to, its new status and error code."""

    message_sid: str
    account_sid: str
    status: str
    error_code: int | None = None


def parse_status_report(account_sid: str, fields: Mapping[str, str]) -> StatusReport | str | None:
    """The report in a (verified) status-callback form; a sentence when it is malformed; None to ignore.

    None is for statuses of messages the bot never announces (inbound ones).
    """
    sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
    if not _MESSAGE_SID.fullmatch(sid):
        return "The form has no MessageSid (SM… or MM… and 32 hex digits); nothing was done."
    status = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").strip().lower()
    if status in _NOT_OURS:
        return None
    if rank_of(status) is None:
        return "MessageStatus is missing or not a status Twilio reports for a message; nothing was done."
    raw_code = (fields.get("ErrorCode") or "").strip()
    if raw_code and not _ERROR_CODE.fullmatch(raw_code):
        return "ErrorCode is not a Twilio error code (a number); nothing was done."
    return StatusReport(sid, account_sid, status, int(raw_code) if raw_code else None)


# ── what a card is drawn from ─────────────────────────────────────────────────────────────────────────


def _rfc2822(moment: datetime | None) -> str | None:
    return None if moment is None else format_datetime(moment.astimezone(UTC), usegmt=True)


def _message_json(msg: Message) -> dict[str, object]:
    """The message in Twilio's own JSON shape, so `Message.from_json` reads it back unchanged."""
    return {
        "sid": msg.sid,
        "account_sid": msg.account_sid,
        "to": msg.to,
        "from": msg.from_,
        "body": msg.body,
        "status": msg.status,
        "direction": msg.direction,
        "num_segments": msg.num_segments,
        "num_media": msg.num_media,
        "price": None if msg.price is None else str(msg.price),
        "price_unit": msg.price_unit,
        "error_code": msg.error_code,
        "error_message": msg.error_message,
        "messaging_service_sid": msg.messaging_service_sid,
        "date_created": _rfc2822(msg.date_created),
        "date_sent": _rfc2822(msg.date_sent),
        "date_updated": _rfc2822(msg.date_updated),
        "uri": msg.uri,
    }


@dataclass(frozen=True)
class CardFacts:
    """What a message card was drawn from when it was posted: enough to draw it again later."""

    message: Message
    requested_by: str
    account_label: str
    operation: str
    send_at: datetime | None = None
    note: str | None = None

    def to_json(self) -> str:
        """The facts as stored text."""
        return json.dumps(
            {
                "message": _message_json(self.message),
                "requested_by": self.requested_by,
                "account_label": self.account_label,
                "operation": self.operation,
                "send_at": None if self.send_at is None else self.send_at.isoformat(),
                "note": self.note,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> CardFacts:
        """The facts back from `to_json`."""
        data = json.loads(text)
        send_at = data.get("send_at")
        return cls(
            message=Message.from_json(data["message"]),
            requested_by=str(data["requested_by"]),
            account_label=str(data["account_label"]),
            operation=str(data["operation"]),
            send_at=datetime.fromisoformat(send_at) if send_at else None,
            note=data.get("note"),
        )


@dataclass(frozen=True)
class LiveCard:
    """A card to redraw: where it is, what it was drawn from, and the message as it stands now."""

    record: MessageCard
    facts: CardFacts

    @property
    def message(self) -> Message:
        """The posted message with its newest status (and the error code that came with it)."""
        msg = self.facts.message
        if msg.status == self.record.status and msg.error_code == self.record.error_code:
            return msg
        same_error = msg.error_code == self.record.error_code
        return replace(
            msg,
            status=self.record.status,
            error_code=self.record.error_code,
            error_message=msg.error_message if same_error else None,
        )

    @property
    def changed_at(self) -> datetime:
        """When the status last changed."""
        return self.record.status_at


class RetryLater(Exception):
    """The renderer was asked to slow down (Slack's 429): try again after `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = seconds


class CardRenderer(Protocol):
    """Draws a card again where it was posted (and its log copy). Raises RetryLater when told to wait."""

    async def show(self, card: LiveCard) -> None:
        """Redraw `card`; a card that is gone is logged and counts as shown."""


Fetch = Callable[[str, str, str], Awaitable[Message | None]]


@dataclass(kw_only=True, eq=False)  # eq=False: one service, told apart by identity
class LiveStatus:
    """Keeps every tracked message's status and its card true, whatever order Twilio reports in."""

    cards: MessageCards
    tasks: TaskTracker
    clock: Callable[[], datetime]
    enabled: bool
    interval: float = 2.0
    monotonic: Callable[[], float] = time.monotonic
    _renderer: CardRenderer | None = field(default=None, init=False, repr=False)
    _last_drawn: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _flushing: set[str] = field(default_factory=set, init=False, repr=False)
    _dirty: set[str] = field(default_factory=set, init=False, repr=False)
    _paused_until: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def use_renderer(self, renderer: CardRenderer) -> None:
        """Draw cards with `renderer` (the Slack door's), from now on."""
        self._renderer = renderer

    async def opened(
        self,
        *,
        team_id: str,
        message: Message,
        account_sid: str,
        facts: CardFacts,
    ) -> None:
        """Track a message Twilio just accepted, before its card is out, so no report finds it unknown."""
        if not self.enabled:
            return
        rank = rank_of(message.status)
        await self.cards.open(
            NewMessageCard(
                message_sid=message.sid,
                team_id=team_id,
                account_sid=account_sid,
                account_label=facts.account_label,
                status=message.status,
                status_rank=0 if rank is None else rank,
                error_code=message.error_code,
                status_at=self.clock(),
                card_json=facts.to_json(),
            )
        )

    async def posted(
        self,
        message_sid: str,
        *,
        shown_status: str,
        channel_id: str | None,
        card_ts: str | None,
        log_channel_id: str | None = None,
        log_ts: str | None = None,
    ) -> None:
        """The card is out (`card_ts` None: through a response_url, not editable); catch up if it lags."""
        if not self.enabled:
            return
        record = await self.cards.posted(
            message_sid,
            channel_id=channel_id,
            card_ts=card_ts,
            log_channel_id=log_channel_id,
            log_ts=log_ts,
            shown_status=shown_status,
        )
        if record is not None and record.status != shown_status:
            self._want(record)

    async def report(self, report: StatusReport) -> bool:
        """Apply a status callback; True when it moved the message forward (and its card will follow)."""
        rank, below = advance_rule(report.status)
        record = await self.cards.advance(
            report.message_sid,
            account_sid=report.account_sid,
            status=report.status,
            rank=rank,
            below=below,
            error_code=report.error_code,
            at=self.clock(),
        )
        if record is None:
            return False  # unknown message (or another account's), or a late or repeated report
        self._want(record)
        return True

    async def forget(self, message_sid: str) -> None:
        """The message's card was replaced (deleted): later reports must not draw it back."""
        if self.enabled:
            self._dirty.discard(message_sid)
            await self.cards.forget(message_sid)

    async def refresh_open(self, fetch: Fetch, *, window: timedelta = REFRESH_WINDOW) -> int:
        """Once at start-up: ask Twilio about messages younger than `window` whose status is not final,
        and redraw cards that lag behind what is stored. Returns how many were asked about.

        Reports missed while the bot was down are not sent again by Twilio (it retries only a failed
        connection), so this is how those cards catch up.
        """
        if not self.enabled:
            return 0
        asked = 0
        records = await self.cards.open_since(self.clock() - window, below_rank=FINAL_RANK)

        async def one(record: MessageCard) -> None:
            nonlocal asked
            if record.status_rank < FINAL_RANK:
                asked += 1
                message = await fetch(record.team_id, record.account_label, record.message_sid)
                if message is not None and rank_of(message.status) is not None:
                    now = StatusReport(
                        record.message_sid, record.account_sid, message.status, message.error_code
                    )
                    await self.report(now)
            current = await self.cards.get(record.message_sid)
            if current is not None and current.shown_status != current.status:
                self._want(current)

        # The per-account limit lives in `fetch` (the operations' semaphore), as for every Twilio call.
        await asyncio.gather(*(one(r) for r in records))
        if records:
            log.info("refreshed %d message status(es) left open before the restart", asked)
        return asked

    # ── drawing, coalesced ────────────────────────────────────────────────────────────────────────────

    def _want(self, record: MessageCard) -> None:
        """The card of `record` should show what is stored: now, or when its interval allows."""
        if record.card_ts is None and record.log_ts is None:
            return  # not posted yet (posted() catches up), or only through a response_url
        sid = record.message_sid
        if len(self._last_drawn) > 10_000:  # forget cards drawn longer ago than the interval
            horizon = self.monotonic() - self.interval
            for old in [k for k, at in self._last_drawn.items() if at < horizon]:
                del self._last_drawn[old]
        self._dirty.add(sid)
        if sid in self._flushing:
            return  # the running flush picks the newest status up
        self._flushing.add(sid)
        try:
            self.tasks.spawn(self._flush(sid, record.team_id), name="update card status")
        except ShuttingDown:
            self._flushing.discard(sid)  # shown_status lags; the next start redraws it

    async def _flush(self, sid: str, team_id: str) -> None:
        try:
            while sid in self._dirty:
                now = self.monotonic()
                ready = max(
                    self._last_drawn.get(sid, float("-inf")) + self.interval,
                    self._paused_until.get(team_id, float("-inf")),
                )
                if ready > now:
                    await asyncio.sleep(ready - now)
                    continue
                self._dirty.discard(sid)
                record = await self.cards.get(sid)
                if record is None or record.shown_status == record.status or self._renderer is None:
                    continue
                try:
                    await self._renderer.show(LiveCard(record, CardFacts.from_json(record.card_json)))
                except RetryLater as wait:
                    self._paused_until[team_id] = self.monotonic() + wait.seconds
                    self._dirty.add(sid)
                    log.info("Slack asked to slow down card updates; waiting %.1f s", wait.seconds)
                    continue
                except Exception:
                    # Slack unreachable: the card lags until the next report or the next start.
                    log.warning("could not update the card of %s", sid, exc_info=True)
                    continue
                finally:
                    # Counted from when Slack answered, so two updates of a card also *arrive* at least
                    # `interval` apart, however long the first one travelled.
                    self._last_drawn[sid] = self.monotonic()
                await self.cards.shown(sid, record.status)
        finally:
            self._flushing.discard(sid)

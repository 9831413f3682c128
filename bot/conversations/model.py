"""What the conversation services share: the shapes that cross the doors, the sink, and the pure rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.media_links import FileRef
from bot.twilio.models import IncomingNumber
from storage.conversations import Conversation, InboundRow, Reply, Route

INBOUND_PATH = "/twilio/inbound"
MAX_REPLY = 1600
# Twilio attaches at most 10 media to a message, 5 MB in all.
MAX_MEDIA = 10
MAX_MMS_BYTES = 5 * 1024 * 1024
NOTE_PREFIX = "//"
# What the webhook keeps of a body; an SMS is at most 1600 characters, so more is not a real text.
MAX_STORED_BODY = 20_000
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
# How long handled Slack event_ids are kept: Slack retries for minutes, so a day is plenty.
EVENT_MEMORY = timedelta(days=1)
RETRY_MAX = 60.0


class RetryLater(Exception):
    """The thread cannot take a post now (Slack's rate limit): try the same post again after `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = seconds


class PostFailed(Exception):
    """The thread cannot take a post at all (the bot left the channel…): `reason` says why, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ThreadSink(Protocol):
    """Where conversations are shown: the Slack door implements it."""

    async def open_thread(self, conversation: Conversation, previous: Conversation | None) -> str:
        """Post the conversation's root card; its ts (the thread)."""

    async def post_text(self, conversation: Conversation, text: InboundRow) -> str:
        """Show one inbound text in the thread; its ts."""

    async def notice(self, conversation: Conversation, sentence: str) -> None:
        """Say something in the thread (opted out, back in…)."""

    async def upload(self, conversation: Conversation, filename: str, content_type: str, data: bytes) -> None:
        """Put a text's attachment into the thread."""

    async def reply_status(
        self, conversation: Conversation, reply: Reply, status: str, sentence: str | None
    ) -> None:
        """A reply was delivered or failed: change its reaction, and say why it failed in the thread."""


@dataclass(frozen=True)
class InboundText:
    """The fields of Twilio's messaging webhook the bot uses, as received."""

    message_sid: str
    account_sid: str
    from_: str
    to: str
    body: str
    num_media: int = 0
    profile_name: str | None = None
    opt_out_type: str | None = None
    # (MediaUrl, MediaContentType) of each attachment.
    media: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundText:
        """Read a webhook form already checked by `inbound_problem`."""
        media = form.get("NumMedia", "0")
        count = int(media) if media.isdigit() and len(media) < 4 else 0
        items = tuple(
            (form[f"MediaUrl{n}"][:2000], form.get(f"MediaContentType{n}", "")[:200])
            for n in range(min(count, MAX_MEDIA))
            if form.get(f"MediaUrl{n}")
        )
        return cls(
            message_sid=form["MessageSid"],
            account_sid=form["AccountSid"],
            from_=form["From"],
            to=form["To"],
            body=form.get("Body", "")[:MAX_STORED_BODY],
            num_media=count,
            profile_name=(form.get("ProfileName") or None),
            opt_out_type=(form.get("OptOutType") or None),
            media=items,
        )


def inbound_problem(form: Mapping[str, str]) -> str | None:
    """Why a signed webhook form cannot be a text, in a sentence for the log; None when it can."""
    missing = [name for name in ("MessageSid", "AccountSid", "From", "To") if not form.get(name)]
    if missing:
        return f"the form has no {', '.join(missing)}"
    if len(form["MessageSid"]) > 64 or len(form["From"]) > 64 or len(form["To"]) > 64:
        return "MessageSid, From or To is longer than Twilio ever sends"
    return None


def opt_change(text: InboundRow | InboundText) -> bool | None:
    """True when the text opts the person out (STOP…), False when back in (START…), None otherwise."""
    kind = (text.opt_out_type or "").upper()
    word = text.body.strip().upper()
    if kind == "STOP" or word in STOP_WORDS:
        return True
    if kind == "START" or word in START_WORDS:
        return False
    return None


@dataclass(frozen=True)
class RouteView:
    """A route as its card shows it: where Twilio sends the number's texts today, and where it could."""

    route: Route
    number: IncomingNumber | None
    # Set when the number could not be looked up at Twilio (the card says so instead).
    lookup_problem: str | None
    # PUBLIC_URL + /twilio/inbound when PUBLIC_URL is set: what the "Point this number here" button sets.
    inbound_url: str | None


@dataclass(frozen=True)
class ReplyRequest:
    """A Slack message event, as the Slack door read it."""

    team_id: str
    channel_id: str
    user_id: str
    ts: str
    thread_ts: str | None
    text: str
    event_id: str
    subtype: str | None = None
    bot_id: str | None = None
    files: tuple[FileRef, ...] = ()


@dataclass(frozen=True)
class ReplyOutcome:
    """What became of a message in a thread.

    `kind`: ignored (not a conversation's reply, or a retry), note (internal, never sent), too_long,
    held (opted out), sent, failed. `sentence` is what the thread should read, when anything.
    """

    kind: str
    conversation: Conversation | None = None
    sentence: str | None = None
    message_sid: str | None = None
    # The outbox key of a reply that reached Twilio (or tried to): `replied(key)` once the thread shows it.
    key: str | None = None


def reply_key(team_id: str, channel_id: str, ts: str) -> str:
    """The outbox key of the reply a Slack message makes."""
    return f"reply:{team_id}:{channel_id}:{ts}"

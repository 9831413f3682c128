"""Two-way conversations: routes, inbound texts into threads, replies from threads. Nothing here knows Slack.

A text to a routed number joins the conversation (our number, their number) of the route's workspace:
one thread until it is closed or idle for `idle_days`. Texts of one conversation are handed to the
thread in the order they were received (one worker per pair of numbers, waiting out rate limits and
never dropping a text); a text stays `received` in storage until it is shown, so a restart shows it then.
A reply goes through `Operations.reply`, the outbox path, keyed on the Slack message: at most once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.core.commands import RouteCommand
from bot.core.phone import PhoneNumber
from bot.media_links import FileRef, MediaLinks
from bot.operations import Context, Duplicate, OperationError, Operations, Sent
from bot.tasks import ShuttingDown, TaskTracker
from bot.twilio.client import TwilioClient
from bot.twilio.errors import TwilioError
from bot.twilio.media import FetchedMedia, MediaFetcher
from bot.twilio.models import IncomingNumber
from storage.accounts import AccountStore
from storage.conversations import Conversation, ConversationStore, InboundRow, Route, RouteTaken

__all__ = [
    "INBOUND_PATH",
    "MAX_REPLY",
    "NOTE_PREFIX",
    "Conversation",
    "Conversations",
    "InboundRow",
    "InboundText",
    "NotRouted",
    "PostFailed",
    "ReplyOutcome",
    "ReplyRequest",
    "RetryLater",
    "Route",
    "RouteView",
    "ThreadSink",
    "inbound_problem",
    "opt_change",
    "reply_key",
]

log = logging.getLogger(__name__)

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
# How long a worker waits before asking Slack again when it gives no Retry-After.
DEFAULT_RETRY = 1.0
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
class NotRouted:
    """The text was stored, but no route takes it (its number is not routed)."""


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


# Subtypes that are not a person writing a new message in the thread.
_NOT_A_REPLY = frozenset(
    {"bot_message", "message_changed", "message_deleted", "thread_broadcast", "channel_join", "channel_leave"}
)


class Conversations:
    """Routes, inbound texts and replies for every workspace; the door shows them through a ThreadSink."""

    def __init__(
        self,
        *,
        store: ConversationStore,
        accounts: AccountStore,
        twilio: TwilioClient,
        operations: Operations,
        tasks: TaskTracker,
        clock: Callable[[], datetime],
        idle_days: int = 7,
        public_url: str | None = None,
        media: MediaFetcher | None = None,
        links: MediaLinks | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self._accounts = accounts
        self._twilio = twilio
        self._operations = operations
        self._tasks = tasks
        self._clock = clock
        self._idle = timedelta(days=idle_days)
        self._public_url = public_url.rstrip("/") if public_url else None
        self._sleep = sleep
        self._media = media
        self._links = links
        self._sink: ThreadSink | None = None
        self._queues: dict[tuple[str, str, str], deque[InboundRow]] = {}
        # One reply at a time per thread, in the order the events arrived (asyncio.Lock is first come,
        # first served, and each reply task takes it before its first await).
        self._reply_locks: dict[tuple[str, str, str], tuple[asyncio.Lock, list[int]]] = {}

    def attach(self, sink: ThreadSink) -> None:
        """Show conversations through `sink` (the composition root calls this once)."""
        self._sink = sink

    @property
    def links(self) -> MediaLinks | None:
        """The media links replies' attachments go out through (None without PUBLIC_URL)."""
        return self._links

    @property
    def inbound_url(self) -> str | None:
        """Where Twilio should send our numbers' texts, when PUBLIC_URL is set."""
        return self._public_url + INBOUND_PATH if self._public_url else None

    # ── routes ──────────────────────────────────────────────────────────────────────────────────────

    async def route(self, ctx: Context, cmd: RouteCommand) -> RouteView:
        """Route our number to a channel in the asking workspace; OperationError in a sentence."""
        account, _ = await self._operations.resolve(ctx, cmd.account)
        try:
            route = await self.store.add_route(
                team_id=ctx.team_id,
                number=str(cmd.number),
                channel_id=cmd.channel_id,
                account_label=account.label,
                account_sid=account.account_sid,
                created_by=ctx.user_id,
            )
        except RouteTaken:
            raise OperationError(
                f"{cmd.number} of that Twilio account already opens threads in another workspace; "
                "remove that route there first."
            ) from None
        return await self.view(ctx, route)

    async def view(self, ctx: Context, route: Route) -> RouteView:
        """The route with where Twilio sends its number's texts today."""
        found = await self._operations.credentials(ctx.team_id, route.account_label)
        if found is None or found[0].account_sid != route.account_sid:
            return RouteView(route, None, "its Twilio account is no longer set up here", self.inbound_url)
        try:
            number = await self._twilio.find_incoming_number(found[1], route.number)
        except TwilioError as err:
            return RouteView(route, None, str(err), self.inbound_url)
        problem = None if number is not None else "Twilio does not list this number in that account"
        return RouteView(route, number, problem, self.inbound_url)

    async def routes(self, team_id: str) -> tuple[list[Route], int]:
        """The workspace's routes, and how many texts to its accounts' numbers arrived unrouted."""
        sids = sorted({a.account_sid for a in await self._accounts.list(team_id)})
        return await self.store.routes(team_id), await self.store.unrouted_count(sids)

    async def unroute(self, team_id: str, number: PhoneNumber) -> bool:
        """Remove the workspace's route of `number`; False when there was none."""
        return await self.store.remove_route(team_id, str(number))

    async def point(self, ctx: Context, number: str) -> RouteView:
        """Set the routed number's SmsUrl to PUBLIC_URL/twilio/inbound (POST); OperationError otherwise."""
        if self.inbound_url is None:
            raise OperationError("PUBLIC_URL is not set, so the bot does not know its own address.")
        route = next((r for r in await self.store.routes(ctx.team_id) if r.number == number), None)
        if route is None:
            raise OperationError(f"{number} is not routed in this workspace any more.")
        found = await self._operations.credentials(ctx.team_id, route.account_label)
        if found is None or found[0].account_sid != route.account_sid:
            raise OperationError("The route's Twilio account is no longer set up here.")
        current = await self._twilio.find_incoming_number(found[1], route.number)
        if current is None:
            raise OperationError(f"Twilio does not list {number} in that account.")
        if current.service_sid:
            raise OperationError(
                f"{number} belongs to Messaging Service {current.service_sid}: its incoming texts go to the "
                "service's inbound URL; set it there in Twilio's console."
            )
        updated = await self._twilio.update_incoming_number(found[1], current.sid, sms_url=self.inbound_url)
        log.info("pointed %s at %s", route.number, self.inbound_url)
        return RouteView(route, updated, None, self.inbound_url)

    async def auth_tokens(self, account_sid: str) -> tuple[str, ...]:
        """The stored auth tokens of `account_sid` (any workspace): what its webhooks are signed with."""
        return await self._accounts.auth_tokens(account_sid)

    # ── inbound texts ───────────────────────────────────────────────────────────────────────────────

    async def receive(self, text: InboundText) -> bool:
        """Store a text once and queue it for its thread; False when its MessageSid was seen before."""
        row = await self.store.record_inbound(
            message_sid=text.message_sid,
            account_sid=text.account_sid,
            our_number=text.to,
            their_number=text.from_,
            body=text.body,
            profile_name=text.profile_name,
            opt_out_type=text.opt_out_type,
            num_media=text.num_media,
            received_at=self._clock(),
            media=text.media,
        )
        if row is None:
            log.info("text %s delivered again; already stored", text.message_sid)
            return False
        self._enqueue(row)
        return True

    async def recover(self) -> int:
        """Queue the texts a stopped process received but did not show, in the order received."""
        await self.store.forget_events(self._clock() - EVENT_MEMORY)
        rows = await self.store.unposted_inbound()
        for row in rows:
            self._enqueue(row)
        return len(rows)

    def _enqueue(self, row: InboundRow) -> None:
        key = (row.account_sid, row.our_number, row.their_number)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(row)  # its worker is running and takes it in turn
            return
        self._queues[key] = deque([row])
        try:
            self._tasks.spawn(self._drain(key), name="inbound text")
        except ShuttingDown:
            self._queues.pop(key, None)  # stays `received`; the next start shows it

    async def _drain(self, key: tuple[str, str, str]) -> None:
        queue = self._queues[key]
        try:
            while queue:
                await self._handle(queue[0])
                queue.popleft()
        finally:
            self._queues.pop(key, None)

    async def _handle(self, row: InboundRow) -> None:
        route = await self.store.route_for(row.account_sid, row.our_number)
        if route is None:
            log.warning(
                "text %s to %s arrived with no route; stored, not shown", row.message_sid, row.our_number
            )
            await self.store.mark_inbound(row.message_sid, state="unrouted")
            return
        sink = self._sink
        if sink is None:
            log.error("no thread sink attached; text %s left for the next start", row.message_sid)
            return
        while True:
            try:
                conversation = await self._conversation(sink, route, row)
                change = opt_change(row)
                ts = await sink.post_text(conversation, row)
                await self.store.mark_inbound(
                    row.message_sid,
                    state="posted",
                    team_id=route.team_id,
                    conversation_id=conversation.id,
                    posted_ts=ts,
                )
                if change is not None and change != conversation.opted_out:
                    await self.store.set_opted_out(conversation.id, change)
                    await self._say(sink, conversation, _opt_sentence(conversation, change))
                if row.media:
                    await self._attachments(sink, route, conversation, row)
                return
            except RetryLater as wait:
                # Never drop a text: wait as long as Slack asks, then post the same one again.
                await self._sleep(min(max(wait.seconds, 0.0), RETRY_MAX))
            except PostFailed as err:
                log.warning("could not show text %s in Slack: %s", row.message_sid, err.reason)
                await self.store.mark_inbound(row.message_sid, state="failed", team_id=route.team_id)
                return

    async def _say(self, sink: ThreadSink, conversation: Conversation, sentence: str) -> None:
        """A line in the thread, waiting out rate limits; given up (logged) when Slack refuses it."""
        while True:
            try:
                await sink.notice(conversation, sentence)
                return
            except RetryLater as wait:
                await self._sleep(min(max(wait.seconds, 0.0), RETRY_MAX))
            except PostFailed as err:
                log.warning("could not post a line in the thread: %s", err.reason)
                return

    async def _attachments(
        self, sink: ThreadSink, route: Route, conversation: Conversation, row: InboundRow
    ) -> None:
        """Each attachment into the thread, or a note saying what it was and why it is not there."""
        found = await self._operations.credentials(route.team_id, route.account_label)
        for index, (url, kind) in enumerate(row.media, start=1):
            if self._media is None or found is None or found[0].account_sid != route.account_sid:
                fetched = FetchedMedia(kind, None, None, "the bot cannot fetch media for this account")
            else:
                fetched = await self._media.fetch(found[1], url, kind)
            if fetched.data is not None:
                name = f"{row.message_sid}-{index}{_extension(fetched.content_type)}"
                try:
                    await self._upload(sink, conversation, name, fetched)
                    continue
                except PostFailed as err:
                    fetched = FetchedMedia(
                        fetched.content_type, None, fetched.size, f"Slack refused it ({err.reason})"
                    )
            size = f", {fetched.size:,} bytes" if fetched.size is not None else ""
            log.warning("attachment %d of %s not shown: %s", index, row.message_sid, fetched.problem)
            await self._say(
                sink,
                conversation,
                f"Attachment {index} ({fetched.content_type or 'unknown type'}{size}) is not shown: "
                f"{fetched.problem}.",
            )

    async def _upload(
        self, sink: ThreadSink, conversation: Conversation, name: str, media: FetchedMedia
    ) -> None:
        assert media.data is not None
        while True:
            try:
                await sink.upload(conversation, name, media.content_type, media.data)
                return
            except RetryLater as wait:
                await self._sleep(min(max(wait.seconds, 0.0), RETRY_MAX))

    async def _conversation(self, sink: ThreadSink, route: Route, row: InboundRow) -> Conversation:
        """The open conversation this text joins, or a new one with its root card posted."""
        latest = await self.store.latest(route.team_id, row.our_number, row.their_number)
        now = row.received_at
        if (
            latest is not None
            and latest.thread_ts is not None
            and latest.closed_at is None
            and latest.channel_id == route.channel_id
            and now - latest.last_at < self._idle
        ):
            await self.store.touch(latest.id, now, row.profile_name)
            return latest
        if latest is not None and latest.thread_ts is None:
            conversation = latest  # its root card was not posted yet (Slack was busy, or a restart)
        else:
            conversation = await self.store.open(
                team_id=route.team_id,
                channel_id=route.channel_id,
                account_label=route.account_label,
                account_sid=route.account_sid,
                our_number=row.our_number,
                their_number=row.their_number,
                profile_name=row.profile_name,
                previous_id=latest.id if latest is not None else None,
                at=now,
            )
        previous = (
            await self.store.get(route.team_id, conversation.previous_id)
            if conversation.previous_id is not None
            else None
        )
        ts = await sink.open_thread(conversation, previous)
        await self.store.set_thread(conversation.id, ts)
        found = await self.store.get(route.team_id, conversation.id)
        assert found is not None
        return found

    async def close(self, ctx: Context, conversation_id: int) -> Conversation | None:
        """Close the workspace's conversation: the next text opens a new thread. None if not theirs."""
        conversation = await self.store.get(ctx.team_id, conversation_id)
        if conversation is None:
            return None
        await self.store.close(ctx.team_id, conversation_id, ctx.user_id, self._clock())
        return await self.store.get(ctx.team_id, conversation_id)

    # ── replies ─────────────────────────────────────────────────────────────────────────────────────

    async def reply(self, req: ReplyRequest) -> ReplyOutcome:
        """Send a person's message in a conversation thread as a text, at most once per Slack message.

        Replies in one thread reach Twilio in the order Slack delivered them.
        """
        key = (req.team_id, req.channel_id, req.thread_ts or "")
        lock, users = self._reply_locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                return await self._reply(req)
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._reply_locks[key]

    async def _reply(self, req: ReplyRequest) -> ReplyOutcome:
        if (
            not req.thread_ts
            or req.thread_ts == req.ts
            or req.bot_id
            or (req.subtype is not None and req.subtype not in {"file_share"})
            or not req.user_id
        ):
            return ReplyOutcome("ignored")
        conversation = await self.store.by_thread(req.team_id, req.channel_id, req.thread_ts)
        if conversation is None:
            return ReplyOutcome("ignored")
        text = req.text.strip()
        if text.startswith(NOTE_PREFIX):
            return ReplyOutcome("note", conversation)
        if not text and not req.files:
            return ReplyOutcome("ignored", conversation)
        if len(text) > MAX_REPLY:
            sentence = (
                f"Not sent: this reply has {len(text):,} characters, and a text takes at most {MAX_REPLY:,}. "
                "Shorten it or split it into several replies."
            )
            return await self._told("too_long", conversation, sentence, req)
        problem = self._files_problem(req.files)
        if problem is not None:
            return await self._told("refused", conversation, f"Not sent: {problem}", req)
        if conversation.opted_out:
            sentence = (
                f"Held, not sent: {conversation.their_number} texted STOP. Replies go out again once they "
                "text START."
            )
            return await self._told("held", conversation, sentence, req)
        key = reply_key(req.team_id, req.channel_id, req.ts)
        ctx = Context(team_id=req.team_id, user_id=req.user_id, channel_id=req.channel_id)
        await self.store.record_reply(
            key=key,
            team_id=req.team_id,
            conversation_id=conversation.id,
            channel_id=req.channel_id,
            message_ts=req.ts,
        )
        try:
            result = await self._operations.reply(
                ctx,
                account_label=conversation.account_label,
                account_sid=conversation.account_sid,
                from_=conversation.our_number,
                to=conversation.their_number,
                body=text,
                media=[self._links.link(f) for f in req.files] if self._links else [],
                key=key,
            )
        except OperationError as err:
            await self.store.settle_reply(key, status="failed")
            return ReplyOutcome("failed", conversation, f"Not sent: {err.message}", key=key)
        except TwilioError as err:
            await self.store.settle_reply(key, status="failed")
            if err.unknown_outcome:
                sentence = (
                    f"Twilio did not confirm this reply, so it was not re-sent; it may have gone out. {err}"
                )
            else:
                sentence = f"Twilio did not send this reply: {err}"
            return ReplyOutcome("failed", conversation, sentence, key=key)
        if isinstance(result, Duplicate):
            return ReplyOutcome("ignored", conversation)
        assert isinstance(result, Sent)
        await self.store.settle_reply(key, status=result.message.status, message_sid=result.message.sid)
        return ReplyOutcome("sent", conversation, message_sid=result.message.sid, key=key)

    def _files_problem(self, files: tuple[FileRef, ...]) -> str | None:
        """Why these attachments cannot go out as an MMS, or None."""
        if not files:
            return None
        if self._links is None:
            return (
                "attachments go out through a link to the bot, and the bot does not know its address "
                "(PUBLIC_URL is not set). Send the text without the file, or ask an admin to set PUBLIC_URL."
            )
        if len(files) > MAX_MEDIA:
            return f"a text takes at most {MAX_MEDIA} attachments, not {len(files)}."
        total = sum(f.size or 0 for f in files)
        if total > MAX_MMS_BYTES:
            return (
                f"the attachments add up to {total / 1_048_576:.1f} MB, and a text takes at most "
                f"{MAX_MMS_BYTES / 1_048_576:g} MB."
            )
        return None

    async def replied(self, key: str) -> None:
        """The thread shows the reply's outcome: start-up recovery leaves it be."""
        await self._operations.card_posted(key)

    async def _told(
        self, kind: str, conversation: Conversation, sentence: str, req: ReplyRequest
    ) -> ReplyOutcome:
        # Slack retries an event it thinks was missed: say it once.
        if not await self.store.first_event(req.event_id or f"ts:{req.channel_id}:{req.ts}", req.team_id):
            return ReplyOutcome("ignored", conversation)
        return ReplyOutcome(kind, conversation, sentence)


def reply_key(team_id: str, channel_id: str, ts: str) -> str:
    """The outbox key of the reply a Slack message makes."""
    return f"reply:{team_id}:{channel_id}:{ts}"


def _opt_sentence(conversation: Conversation, opted_out: bool) -> str:
    if opted_out:
        return (
            f"{conversation.their_number} texted STOP: replies from this thread are held and not sent "
            "until they text START."
        )
    return f"{conversation.their_number} texted START: replies from this thread are sent again."


_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "application/pdf": ".pdf",
    "text/vcard": ".vcf",
    "text/plain": ".txt",
}


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type.lower(), "")

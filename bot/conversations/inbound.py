"""Texts in: each stored once, then shown in its conversation's thread, in order, whatever Slack's pace."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.conversations.model import (
    EVENT_MEMORY,
    RETRY_MAX,
    InboundText,
    PostFailed,
    RetryLater,
    ThreadSink,
    opt_change,
)
from bot.operations import Operations
from bot.tasks import ShuttingDown, TaskTracker
from bot.twilio.media import FetchedMedia, MediaFetcher
from storage.conversations import Conversation, ConversationStore, InboundRow, NewInbound, Route

log = logging.getLogger(__name__)


# Not frozen: the sink is attached after the composition root has built everything.
@dataclass(kw_only=True, eq=False)  # eq=False: one service, told apart by identity
class Inbound:
    """Takes texts from the webhook and shows them through the ThreadSink, one worker per pair of numbers."""

    store: ConversationStore
    operations: Operations
    tasks: TaskTracker
    clock: Callable[[], datetime]
    idle_days: int
    media: MediaFetcher | None
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    _sink: ThreadSink | None = field(default=None, init=False, repr=False)
    _queues: dict[tuple[str, str, str], deque[InboundRow]] = field(
        default_factory=dict, init=False, repr=False
    )

    def attach(self, sink: ThreadSink) -> None:
        """Show conversations through `sink` (the composition root calls this once)."""
        self._sink = sink

    async def receive(self, text: InboundText) -> bool:
        """Store a text once and queue it for its thread; False when its MessageSid was seen before."""
        row = await self.store.record_inbound(
            NewInbound(
                message_sid=text.message_sid,
                account_sid=text.account_sid,
                our_number=text.to,
                their_number=text.from_,
                body=text.body,
                profile_name=text.profile_name,
                opt_out_type=text.opt_out_type,
                num_media=text.num_media,
                received_at=self.clock(),
                media=text.media,
            )
        )
        if row is None:
            log.info("text %s delivered again; already stored", text.message_sid)
            return False
        self._enqueue(row)
        return True

    async def recover(self) -> int:
        """Queue the texts a stopped process received but did not show, in the order received."""
        await self.store.forget_events(self.clock() - EVENT_MEMORY)
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
            self.tasks.spawn(self._drain(key), name="inbound text")
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
            await self.store.mark_unrouted(row.message_sid)
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
                await self.store.mark_posted(
                    row.message_sid, team_id=route.team_id, conversation_id=conversation.id, posted_ts=ts
                )
                if change is not None and change != conversation.opted_out:
                    await self.store.set_opted_out(conversation.id, change)
                    await self._say(sink, conversation, _opt_sentence(conversation, change))
                if row.media:
                    await self._attachments(sink, route, conversation, row)
                return
            except RetryLater as wait:
                # Never drop a text: wait as long as Slack asks, then post the same one again.
                await self.sleep(min(max(wait.seconds, 0.0), RETRY_MAX))
            except PostFailed as err:
                log.warning("could not show text %s in Slack: %s", row.message_sid, err.reason)
                await self.store.mark_failed(row.message_sid, team_id=route.team_id)
                return

    async def _say(self, sink: ThreadSink, conversation: Conversation, sentence: str) -> None:
        """A line in the thread, waiting out rate limits; given up (logged) when Slack refuses it."""
        while True:
            try:
                await sink.notice(conversation, sentence)
                return
            except RetryLater as wait:
                await self.sleep(min(max(wait.seconds, 0.0), RETRY_MAX))
            except PostFailed as err:
                log.warning("could not post a line in the thread: %s", err.reason)
                return

    async def _attachments(
        self, sink: ThreadSink, route: Route, conversation: Conversation, row: InboundRow
    ) -> None:
        """Each attachment into the thread, or a note saying what it was and why it is not there."""
        found = await self.operations.credentials(route.team_id, route.account_label)
        for index, (url, kind) in enumerate(row.media, start=1):
            if self.media is None or found is None or found[0].account_sid != route.account_sid:
                fetched = FetchedMedia(kind, None, None, "the bot cannot fetch media for this account")
            else:
                fetched = await self.media.fetch(found[1], url, kind)
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
                await self.sleep(min(max(wait.seconds, 0.0), RETRY_MAX))

    async def _conversation(self, sink: ThreadSink, route: Route, row: InboundRow) -> Conversation:
        """The open conversation this text joins, or a new one with its root card posted."""
        latest = await self.store.latest(route.team_id, row.our_number, row.their_number)
        now = row.received_at
        if (
            latest is not None
            and latest.thread_ts is not None
            and latest.closed_at is None
            and latest.channel_id == route.channel_id
            and now - latest.last_at < timedelta(days=self.idle_days)
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

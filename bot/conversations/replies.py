"""Replies out: a person's message in a conversation thread, sent as a text at most once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.conversations.model import (
    MAX_MEDIA,
    MAX_MMS_BYTES,
    MAX_REPLY,
    NOTE_PREFIX,
    ReplyOutcome,
    ReplyRequest,
    ThreadSink,
    reply_key,
)
from bot.media_links import FileRef, MediaLinks
from bot.operations import Context, Duplicate, OperationError, Operations, Sent
from bot.status import STATUS_RANKS, StatusReport
from bot.twilio.errors import TwilioError, hint_for
from storage.conversations import Conversation, ConversationStore


# Not frozen: the sink is attached after the composition root has built everything.
@dataclass(kw_only=True, eq=False)  # eq=False: one service, told apart by identity
class Replies:
    """Decides what a thread message is (reply, note, too long, held) and sends replies in order."""

    store: ConversationStore
    operations: Operations
    links: MediaLinks | None
    # One reply at a time per thread, in the order the events arrived (asyncio.Lock is first come,
    # first served, and each reply task takes it before its first await).
    _reply_locks: dict[tuple[str, str, str], tuple[asyncio.Lock, list[int]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _sink: ThreadSink | None = field(default=None, init=False, repr=False)

    def attach(self, sink: ThreadSink) -> None:
        """Show replies' outcomes through `sink`."""
        self._sink = sink

    async def status(self, report: StatusReport) -> bool:
        """A status callback for a reply: once delivered or failed, its reaction follows (forward only).

        False when the message is not a reply of this account's conversations, or the news is old.
        """
        outcome = _OUTCOMES.get(report.status)
        if outcome is None:
            return False
        earlier = [s for s, rank in STATUS_RANKS.items() if rank < STATUS_RANKS[report.status]] + ["sending"]
        known = await self.store.reply_by_sid(report.message_sid)
        if known is None:
            return False
        conversation = await self.store.get(known.team_id, known.conversation_id)
        if conversation is None or conversation.account_sid != report.account_sid:
            return False  # another account's callback names this SID: not ours to act on
        reply = await self.store.advance_reply(report.message_sid, status=report.status, only_from=earlier)
        if reply is None or self._sink is None:
            return False
        sentence = None
        if outcome == "failed":
            hint = hint_for(report.error_code)
            code = f" (error {report.error_code})" if report.error_code else ""
            sentence = f"Twilio could not deliver this reply{code}." + (f" {hint}" if hint else "")
        await self._sink.reply_status(conversation, reply, outcome, sentence)
        return True

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
            result = await self.operations.reply(
                ctx,
                account_label=conversation.account_label,
                account_sid=conversation.account_sid,
                from_=conversation.our_number,
                to=conversation.their_number,
                body=text,
                media=[self.links.link(f) for f in req.files] if self.links else [],
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
        if self.links is None:
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
        await self.operations.card_posted(key)

    async def _told(
        self, kind: str, conversation: Conversation, sentence: str, req: ReplyRequest
    ) -> ReplyOutcome:
        # Slack retries an event it thinks was missed: say it once.
        if not await self.store.first_event(req.event_id or f"ts:{req.channel_id}:{req.ts}", req.team_id):
            return ReplyOutcome("ignored", conversation)
        return ReplyOutcome(kind, conversation, sentence)


# What a reply's reaction shows for each final status.
_OUTCOMES = {"delivered": "delivered", "read": "delivered", "undelivered": "failed", "failed": "failed"}

"""Two-way conversations: routes, inbound texts into threads, replies from threads. Nothing here knows Slack.

A text to a routed number joins the conversation (our number, their number) of the route's workspace:
one thread until it is closed or idle for `idle_days`. Texts of one conversation are handed to the
thread in the order they were received (one worker per pair of numbers, waiting out rate limits and
never dropping a text); a text stays `received` in storage until it is shown, so a restart shows it then.
A reply goes through `Operations.reply`, the outbox path, keyed on the Slack message: at most once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.conversations.inbound import Inbound
from bot.conversations.model import (
    INBOUND_PATH,
    MAX_MEDIA,
    MAX_REPLY,
    NOTE_PREFIX,
    InboundText,
    PostFailed,
    ReplyOutcome,
    ReplyRequest,
    RetryLater,
    RouteView,
    ThreadSink,
    inbound_problem,
    opt_change,
    reply_key,
)
from bot.conversations.replies import Replies
from bot.conversations.routes import Routes
from bot.core.commands import RouteCommand
from bot.core.phone import PhoneNumber
from bot.media_links import MediaLinks
from bot.operations import Context, Operations
from bot.status import StatusReport
from bot.tasks import TaskTracker
from bot.twilio.client import TwilioClient
from bot.twilio.media import MediaFetcher
from storage.accounts import AccountStore
from storage.conversations import Conversation, ConversationStore, InboundRow, Reply, Route

__all__ = [
    "INBOUND_PATH",
    "MAX_MEDIA",
    "MAX_REPLY",
    "NOTE_PREFIX",
    "Conversation",
    "Conversations",
    "InboundRow",
    "InboundText",
    "PostFailed",
    "Reply",
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


class Conversations:
    """The doors' one service for conversations: routes, texts in, replies out (each its own part)."""

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
        self._clock = clock
        self.routing = Routes(
            store=store, accounts=accounts, twilio=twilio, operations=operations, public_url=public_url
        )
        self.inbound = Inbound(
            store=store,
            operations=operations,
            tasks=tasks,
            clock=clock,
            idle_days=idle_days,
            media=media,
            sleep=sleep,
        )
        self.replies = Replies(store=store, operations=operations, links=links)

    def attach(self, sink: ThreadSink) -> None:
        """Show conversations through `sink` (the composition root calls this once)."""
        self.inbound.attach(sink)
        self.replies.attach(sink)

    @property
    def links(self) -> MediaLinks | None:
        """The media links replies' attachments go out through (None without PUBLIC_URL)."""
        return self.replies.links

    @property
    def inbound_url(self) -> str | None:
        """Where Twilio should send our numbers' texts, when PUBLIC_URL is set."""
        return self.routing.inbound_url

    async def route(self, ctx: Context, cmd: RouteCommand) -> RouteView:
        """Route our number to a channel in the asking workspace; OperationError in a sentence."""
        return await self.routing.route(ctx, cmd)

    async def routes(self, team_id: str) -> tuple[list[Route], int, int]:
        """The workspace's routes, and how many texts arrived unrouted, and how many Slack would not show."""
        return await self.routing.routes(team_id)

    async def unroute(self, team_id: str, number: PhoneNumber) -> bool:
        """Remove the workspace's route of `number`; False when there was none."""
        return await self.routing.unroute(team_id, number)

    async def point(self, ctx: Context, number: str) -> RouteView:
        """Set the routed number's SmsUrl to PUBLIC_URL/twilio/inbound (POST); OperationError otherwise."""
        return await self.routing.point(ctx, number)

    async def receive(self, text: InboundText) -> bool:
        """Store a text once and queue it for its thread; False when its MessageSid was seen before."""
        return await self.inbound.receive(text)

    async def recover(self) -> int:
        """Queue the texts a stopped process received but did not show, in the order received."""
        return await self.inbound.recover()

    async def close(self, ctx: Context, conversation_id: int) -> Conversation | None:
        """Close the workspace's conversation: the next text opens a new thread. None if not theirs."""
        conversation = await self.store.get(ctx.team_id, conversation_id)
        if conversation is None:
            return None
        await self.store.close(ctx.team_id, conversation_id, ctx.user_id, self._clock())
        return await self.store.get(ctx.team_id, conversation_id)

    async def reply(self, req: ReplyRequest) -> ReplyOutcome:
        """Send a person's message in a conversation thread as a text, at most once per Slack message."""
        return await self.replies.reply(req)

    async def status(self, report: StatusReport) -> bool:
        """A status callback: when it is a reply's, its reaction follows. False when not a reply's."""
        return await self.replies.status(report)

    async def replied(self, key: str) -> None:
        """The thread shows the reply's outcome: start-up recovery leaves it be."""
        await self.replies.replied(key)

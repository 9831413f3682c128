"""Conversations shown in Slack: the ThreadSink the conversations service posts through."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversations import Conversation, InboundRow, PostFailed, Reply, RetryLater
from bot.slack.cards import Card, _context, _fallback
from bot.slack.conversation_cards import inbound_text_card, root_card
from bot.slack.delivery import Delivery
from bot.slack.text import safe

log = logging.getLogger(__name__)

# Reactions on a reply: what became of it.
REACTION_SENT = "outbox_tray"
REACTION_DELIVERED = "white_check_mark"
REACTION_FAILED = "x"
# Seconds before asking again when Slack is down or answers 5xx.
SLACK_DOWN_RETRY = 2.0


class SlackThreads:
    """Posts conversations into their channels, one post at a time per channel.

    `client` is the bot's client, or (OAuth mode) a function giving the client of a workspace, None once
    that workspace uninstalled the app: each conversation is posted with its route's workspace token.
    """

    def __init__(
        self,
        client: AsyncWebClient | Callable[[str], Awaitable[AsyncWebClient | None]],
        delivery: Delivery,
    ) -> None:
        self._client = client
        self._delivery = delivery

    async def _client_of(self, team_id: str) -> AsyncWebClient:
        if isinstance(self._client, AsyncWebClient):
            return self._client
        client = await self._client(team_id)
        if client is None:
            # Not worth retrying: the workspace removed the app (its routes go with the uninstall).
            raise PostFailed("the workspace no longer has the app installed")
        return client

    async def _post(self, conversation: Conversation, thread_ts: str | None, card: Card) -> str:
        client = await self._client_of(conversation.team_id)
        try:
            return await self._delivery.post_in_thread(client, conversation.channel_id, thread_ts, card)
        except SlackApiError as err:
            raise _translated(err) from None
        except (aiohttp.ClientError, TimeoutError) as err:
            # Slack unreachable for now: the text waits, it is not dropped.
            raise RetryLater(SLACK_DOWN_RETRY) from err

    async def open_thread(self, conversation: Conversation, previous: Conversation | None) -> str:
        """Post the root card (linking the previous thread when there is one); its ts."""
        link = None
        if previous is not None and previous.thread_ts:
            client = await self._client_of(conversation.team_id)
            try:
                found = await client.chat_getPermalink(
                    channel=previous.channel_id, message_ts=previous.thread_ts
                )
                link = str(found.get("permalink") or "") or None
            except SlackApiError as err:
                log.info("no link to the previous thread: %s", err.response.get("error"))
        return await self._post(conversation, None, root_card(conversation, previous_link=link))

    async def post_text(self, conversation: Conversation, text: InboundRow) -> str:
        """One text in the conversation's thread."""
        return await self._post(conversation, conversation.thread_ts, inbound_text_card(text))

    async def notice(self, conversation: Conversation, sentence: str) -> None:
        """A line from the bot in the thread."""
        await self._post(conversation, conversation.thread_ts, notice_card(sentence))

    async def upload(self, conversation: Conversation, filename: str, content_type: str, data: bytes) -> None:
        """A text's attachment, uploaded into the thread (files.getUploadURLExternal and its completion)."""
        client = await self._client_of(conversation.team_id)
        try:
            await client.files_upload_v2(
                channel=conversation.channel_id,
                thread_ts=conversation.thread_ts,
                file=data,
                filename=filename,
                title=filename,
                request_file_info=False,
            )
        except SlackApiError as err:
            raise _translated(err) from None
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RetryLater(SLACK_DOWN_RETRY) from err

    async def reply_status(
        self, conversation: Conversation, reply: Reply, status: str, sentence: str | None
    ) -> None:
        """Swap the reply's 📤 for ✅ (delivered) or ❌ (failed, with the reason in the thread)."""
        new = REACTION_DELIVERED if status == "delivered" else REACTION_FAILED
        try:
            client = await self._client_of(conversation.team_id)
        except PostFailed as err:
            log.info("could not change a reply's reaction: %s", err)
            return
        for call, name in ((client.reactions_remove, REACTION_SENT), (client.reactions_add, new)):
            try:
                await call(channel=reply.channel_id, timestamp=reply.message_ts, name=name)
            except SlackApiError as err:
                log.info("could not change a reply's reaction: %s", err.response.get("error"))
        if sentence and conversation.thread_ts:
            try:
                await self._post(conversation, conversation.thread_ts, notice_card(sentence))
            except (RetryLater, PostFailed) as err:
                log.warning("could not say in the thread why a reply failed: %s", err)


def notice_card(sentence: str) -> Card:
    """A line from the bot in a thread (escaped)."""
    return Card(text=_fallback(sentence), blocks=(_context(f"ℹ️ {safe(sentence, 2900)}"),))


def _translated(err: SlackApiError) -> Exception:
    """Slack's refusal as the conversations service understands it: wait and retry, or give up."""
    error = str(err.response.get("error", ""))
    if err.response.status_code >= 500:
        return RetryLater(SLACK_DOWN_RETRY)
    if err.response.status_code == 429 or error == "ratelimited":
        raw = err.response.headers.get("Retry-After", "1") if err.response.headers else "1"
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            seconds = 1.0
        return RetryLater(seconds)
    return PostFailed(error or f"HTTP {err.response.status_code}")

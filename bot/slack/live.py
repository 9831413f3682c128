"""Redrawing a message's card when Twilio reports a new status: the Slack half of live delivery status.

`bot.status` decides when a card is redrawn (forward only, at most once per interval); this draws it with
`chat.update` in place, and its log-channel copy too. A 429 becomes `RetryLater` with Slack's
Retry-After, so the whole workspace waits instead of each card retrying on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import cards
from bot.status import LiveCard, RetryLater

__all__ = ["SlackCards", "status_client"]

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 1.0


def status_client(
    token: str,
    base_url: str,
    session: aiohttp.ClientSession | None = None,
    *,
    observer: AsyncRetryHandler | None = None,
) -> AsyncWebClient:
    """A Web API client for card updates: it retries drops and 5xx, but hands 429s back to the caller.

    `observer` (the metrics' counter) goes first, as in `bot.slack.app.web_client`.
    """
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        timeout=10,
        retry_handlers=[
            *([observer] if observer is not None else []),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def _retry_after(err: SlackApiError) -> float:
    headers: Any = getattr(err.response, "headers", None) or {}
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return max(0.0, float(raw)) if raw is not None else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER


class SlackCards:
    """Draws live cards again with chat.update, in the channel and in the log channel.

    `client` is the bot's client, or (OAuth mode) a function giving the client of a card's workspace,
    None once that workspace uninstalled the app.
    """

    def __init__(self, client: AsyncWebClient | Callable[[str], Awaitable[AsyncWebClient | None]]) -> None:
        self._client = client

    async def show(self, card: LiveCard) -> None:
        """Redraw `card` where it was posted; raises RetryLater on 429; a card that is gone is logged."""
        if isinstance(self._client, AsyncWebClient):
            client: AsyncWebClient | None = self._client
        else:
            client = await self._client(card.record.team_id)
        if client is None:
            log.info(
                "left the card of %s as it is: its workspace uninstalled the app", card.record.message_sid
            )
            return
        operation: cards.Operation = "schedule" if card.facts.operation == "schedule" else "send"
        # Drawn as first posted, with the message as Twilio has it now.
        facts = replace(card.facts, message=card.message, operation=operation)
        built = cards.message_card(facts, changed_at=card.changed_at)
        record = card.record
        for channel, ts in ((record.channel_id, record.card_ts), (record.log_channel_id, record.log_ts)):
            if not channel or not ts:
                continue
            try:
                await client.chat_update(channel=channel, ts=ts, text=built.text, blocks=list(built.blocks))
            except SlackApiError as err:
                if err.response.status_code == 429 or err.response.get("error") == "ratelimited":
                    raise RetryLater(_retry_after(err)) from None
                # Deleted, archived, or the bot was removed: nothing to keep true there any more.
                log.warning(
                    "could not update the card of %s in %s: %s",
                    record.message_sid,
                    channel,
                    err.response.get("error"),
                )

"""Getting cards into Slack: the channel first, the command's response_url when the bot cannot post there.

Posts to one channel go one at a time, so cards keep their order even while Slack asks us to slow down
(slack_sdk's rate-limit handler sleeps `Retry-After` inside the call, holding the channel's turn).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.cards import Card

log = logging.getLogger(__name__)

_CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}
INVITE_HINT = (
    "I am not a member of this channel, so this card came through the command's reply link and its "
    "buttons cannot update it. Invite me with `/invite @Twilio Bridge` to keep the team log here."
)


class Delivery:
    """Posts and updates cards; one instance per bot process."""

    def __init__(self, session: aiohttp.ClientSession, *, timeout: float = 10.0) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, channel: str) -> asyncio.Lock:
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = asyncio.Lock()
        return lock

    async def post(
        self,
        client: AsyncWebClient,
        channel: str | None,
        card: Card,
        *,
        response_url: str | None = None,
        user_id: str | None = None,
    ) -> str | None:
        """Post `card` to `channel`; returns the message ts, or None when it went by response_url."""
        if channel:
            try:
                async with self._lock(channel):
                    resp = await client.chat_postMessage(
                        channel=channel, text=card.text, blocks=list(card.blocks), unfurl_links=False
                    )
                ts = resp.get("ts")
                return str(ts) if ts else None
            except SlackApiError as err:
                error = str(err.response.get("error", ""))
                if error not in _CANNOT_POST or not response_url:
                    raise
                log.info("cannot post to %s (%s); falling back to response_url", channel, error)
        if response_url:
            await self.respond(response_url, card, note=INVITE_HINT if channel else None, ephemeral=False)
            return None
        if user_id and channel:
            await client.chat_postEphemeral(
                channel=channel, user=user_id, text=card.text, blocks=list(card.blocks)
            )
        return None

    async def update(self, client: AsyncWebClient, channel: str, ts: str, card: Card) -> None:
        """Replace a card in place (Refresh, Cancel, Delete, Next page)."""
        async with self._lock(channel):
            await client.chat_update(channel=channel, ts=ts, text=card.text, blocks=list(card.blocks))

    async def respond(
        self,
        response_url: str,
        card: Card,
        *,
        note: str | None = None,
        ephemeral: bool = True,
        replace_original: bool = False,
    ) -> None:
        """Answer through Slack's response_url (ephemeral unless told otherwise)."""
        blocks: list[dict[str, Any]] = list(card.blocks)
        if note:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
        payload = {
            "text": card.text,
            "blocks": blocks[:50],
            "response_type": "ephemeral" if ephemeral else "in_channel",
            "replace_original": replace_original,
        }
        async with self._session.post(response_url, json=payload, timeout=self._timeout) as resp:
            if resp.status >= 400:
                log.warning("response_url answered HTTP %s", resp.status)

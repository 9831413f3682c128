"""Getting cards into Slack: the channel first, the command's response_url when the bot cannot post there.

Posts to one channel go one at a time, so cards keep their order even while Slack asks us to slow down
(slack_sdk's rate-limit handler sleeps `Retry-After` inside the call, holding the channel's turn). A
create (send, schedule) takes its `Turn` when it arrives, so its card also waits for the cards of creates
typed before it whose Twilio calls happen to take longer, but only up to `ORDER_WAIT` seconds: one slow
Twilio call must not hold everyone's cards. Views that change nothing take no turn and never wait.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.meter import NO_METER, Meter
from bot.slack.cards import Card

log = logging.getLogger(__name__)

_CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}
# How long a create's card waits for the cards of earlier creates in its channel before it goes first anyway.
ORDER_WAIT = 2.0
# The event type of the metadata on every create's card: it carries the idempotency key, so a restarted
# bot can find a card it posted just before it died (conversations.history) instead of posting another.
CARD_EVENT = "twilio_bridge_card"
INVITE_HINT = (
    "I am not a member of this channel, so this card came through the command's reply link. "
    "Invite me with `/invite @Twilio Bridge` to keep the team log here."
)
NOT_LIVE_HINT = (
    "Its status is not live: a card sent this way cannot be changed later, so press Refresh status to see "
    "where the message is."
)


def card_metadata(key: str) -> dict[str, Any]:
    """The message metadata that marks a card as the outcome of the action keyed `key`."""
    return {"event_type": CARD_EVENT, "event_payload": {"key": key}}


class Turn:
    """One command's place in its channel's queue of cards."""

    def __init__(self, before: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
        self._before = before
        self._mine = mine

    async def wait(self, seconds: float = ORDER_WAIT) -> None:
        """Until every earlier turn in the channel is done (or `seconds` have passed)."""
        if self._before is not None and not self._before.done():
            await asyncio.wait([self._before], timeout=seconds)

    def done(self) -> None:
        """This command's card is out (or it has none): later ones may go. Idempotent."""
        if not self._mine.done():
            self._mine.set_result(None)


class Delivery:
    """Posts and updates cards; one instance per bot process."""

    def __init__(
        self, session: aiohttp.ClientSession, *, timeout: float = 10.0, meter: Meter = NO_METER
    ) -> None:
        self._session = session
        self._meter = meter
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_turn: dict[str, asyncio.Future[None]] = {}

    def turn(self, channel: str) -> Turn:
        """The next place in `channel`'s queue; take it when the command arrives, before any await."""
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        before = self._last_turn.get(channel)
        self._last_turn[channel] = mine

        def forget(done: asyncio.Future[None]) -> None:
            if self._last_turn.get(channel) is done:
                del self._last_turn[channel]

        mine.add_done_callback(forget)
        return Turn(before, mine)

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
        fallback_note: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str | None:
        """Post `card` to `channel`; returns the message ts, or None when it went by response_url.

        `fallback_note` is added to the card when it has to go through the response_url.
        """
        if channel:
            try:
                async with self._lock(channel):
                    resp = await client.chat_postMessage(
                        channel=channel,
                        text=card.text,
                        blocks=list(card.blocks),
                        unfurl_links=False,
                        metadata=metadata,
                    )
                ts = resp.get("ts")
                return str(ts) if ts else None
            except SlackApiError as err:
                error = str(err.response.get("error", ""))
                if error not in _CANNOT_POST or not response_url:
                    raise
                log.info("cannot post to %s (%s); falling back to response_url", channel, error)
        if response_url:
            note = " ".join(n for n in (INVITE_HINT if channel else None, fallback_note) if n) or None
            await self.respond(response_url, card, note=note, ephemeral=False)
            return None
        if user_id and channel:
            await client.chat_postEphemeral(
                channel=channel, user=user_id, text=card.text, blocks=list(card.blocks)
            )
        return None

    async def post_in_thread(
        self, client: AsyncWebClient, channel: str, thread_ts: str | None, card: Card
    ) -> str:
        """Post `card` in `channel` (in the thread of `thread_ts` when given); its ts, or SlackApiError."""
        async with self._lock(channel):
            resp = await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=card.text,
                blocks=list(card.blocks),
                unfurl_links=False,
                unfurl_media=False,
            )
        return str(resp.get("ts") or "")

    async def update(
        self, client: AsyncWebClient, channel: str, ts: str, card: Card, *, response_url: str | None = None
    ) -> None:
        """Replace a card in place (Refresh, Cancel, Delete, Next page).

        A card that came through a reply link sits where the bot cannot post; the button's own
        `response_url` can still replace it.
        """
        try:
            async with self._lock(channel):
                await client.chat_update(channel=channel, ts=ts, text=card.text, blocks=list(card.blocks))
        except SlackApiError as err:
            if str(err.response.get("error", "")) not in _CANNOT_POST or not response_url:
                raise
            log.info(
                "cannot update in %s (%s); replacing through response_url", channel, err.response["error"]
            )
            await self.respond(response_url, card, note=INVITE_HINT, ephemeral=False, replace_original=True)

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
        status = None
        try:
            async with self._session.post(response_url, json=payload, timeout=self._timeout) as resp:
                status = resp.status
                if resp.status >= 400:
                    log.warning("response_url answered HTTP %s", resp.status)
        finally:
            self._meter.reply(status)

    async def dismiss(self, response_url: str) -> None:
        """Delete the ephemeral note the command's ack left ("Working on it…") through its response_url.

        A courtesy once the outcome is shown: a failure is logged, never raised.
        """
        status = None
        try:
            # Slack wants delete_original alone in the payload.
            async with self._session.post(
                response_url, json={"delete_original": True}, timeout=self._timeout
            ) as resp:
                status = resp.status
                if resp.status >= 400:
                    log.info("could not delete the working note: response_url answered HTTP %s", resp.status)
        except (aiohttp.ClientError, TimeoutError) as err:
            log.info("could not delete the working note: %s", type(err).__name__)
        finally:
            self._meter.reply(status)

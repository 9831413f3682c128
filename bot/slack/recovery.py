"""The Slack half of start-up recovery: the card of a create a stopped process left without one."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.operations import Unposted
from bot.slack import cards
from bot.slack.cards import Card
from bot.slack.delivery import NOT_LIVE_HINT, Delivery
from bot.status import CardFacts, LiveStatus
from bot.twilio.models import Message

log = logging.getLogger(__name__)

FOUND_AFTER_RESTART = (
    "Posted after the bot restarted: Twilio had accepted the message before the restart, "
    "and nothing was re-sent."
)


def recovered_card(unposted: Unposted) -> Card:
    """The message as Twilio has it now, or the outcome the bot could not learn."""
    if unposted.message is not None:
        return cards.message_card(
            unposted.message,
            requested_by=unposted.user_id,
            account_label=unposted.account_label,
            operation="send" if unposted.operation == "send" else "schedule",
            note=FOUND_AFTER_RESTART,
        )
    why = (
        "that Twilio account has since been removed here, so the bot cannot check. "
        if unposted.account_gone
        else "Twilio has no record of it. "
    )
    return cards.unknown_outcome_card(
        to=unposted.to,
        body=unposted.body,
        requested_by=unposted.user_id,
        account_label=unposted.account_label,
        detail=f"The bot restarted while Twilio was handling this message, and {why}Nothing was re-sent.",
    )


def poster(
    delivery: Delivery,
    client: AsyncWebClient | Callable[[str], Awaitable[AsyncWebClient | None]],
    live: LiveStatus | None = None,
) -> Callable[[Unposted], Awaitable[bool]]:
    """What `Operations.recover` calls for each card: posts it, False when Slack cannot take it now.

    `client` is the bot's client, or (OAuth mode) a function giving a team's client, None once that
    workspace uninstalled the app; such a card is dropped, since no one there can see it any more.
    With `live`, a recovered message card is followed like any other, so Twilio's reports redraw it.
    """

    async def post(unposted: Unposted) -> bool:
        if isinstance(client, AsyncWebClient):
            team_client: AsyncWebClient | None = client
        else:
            team_client = await client(unposted.team_id)
        if team_client is None:
            log.info("dropped a recovered card: its workspace no longer has the app installed")
            return True
        try:
            ts = await delivery.post(
                team_client,
                unposted.channel_id,
                recovered_card(unposted),
                response_url=unposted.response_url,
                fallback_note=NOT_LIVE_HINT if live is not None and live.enabled else None,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
            # Left as it is: the next start tries again.
            log.warning("could not post a recovered card yet: %s", type(err).__name__)
            return False
        if live is not None and unposted.message is not None:
            await _follow(live, unposted, unposted.message, ts)
        return True

    return post


async def _follow(live: LiveStatus, unposted: Unposted, message: Message, ts: str | None) -> None:
    facts = CardFacts(
        message=message,
        requested_by=unposted.user_id,
        account_label=unposted.account_label,
        operation=unposted.operation,
        note=FOUND_AFTER_RESTART,
    )
    try:
        await live.opened(
            team_id=unposted.team_id, message=message, account_sid=message.account_sid, facts=facts
        )
        await live.posted(
            message.sid, shown_status=message.status, channel_id=unposted.channel_id, card_ts=ts
        )
    except Exception:
        # The card is out; only its live updates are lost.
        log.exception("could not follow the status of a recovered card")

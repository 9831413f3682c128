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
from bot.slack.delivery import Delivery

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
    delivery: Delivery, client: AsyncWebClient | Callable[[str], Awaitable[AsyncWebClient | None]]
) -> Callable[[Unposted], Awaitable[bool]]:
    """What `Operations.recover` calls for each card: posts it, False when Slack cannot take it now.

    `client` is the bot's client, or (OAuth mode) a function giving a team's client, None once that
    workspace uninstalled the app; such a card is dropped, since no one there can see it any more.
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
            await delivery.post(
                team_client, unposted.channel_id, recovered_card(unposted), response_url=unposted.response_url
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
            # Left as it is: the next start tries again.
            log.warning("could not post a recovered card yet: %s", type(err).__name__)
            return False
        return True

    return post

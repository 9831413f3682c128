"""The Slack half of start-up recovery: the card of a create a stopped process left without one, and the
creates it had accepted but never started (run now, or told they were not sent).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.intake import Recovered
from bot.operations import Unposted
from bot.slack import cards
from bot.slack.cards import Card
from bot.slack.delivery import CARD_EVENT, NOT_LIVE_HINT, Delivery, card_metadata
from bot.slack.modals import prefill_from_command
from bot.slack.runner import COMMAND_KEY_PREFIX, Job, SlackDeps, Where, run, tell_user
from bot.status import CardFacts, LiveStatus
from bot.tasks import ShuttingDown
from bot.twilio.models import Message

log = logging.getLogger(__name__)

DELAYED_BY_RESTART = "Delayed by a bot restart: accepted before it, and run once after it."
TAKEN_OVER = "Delayed: the replica that accepted this stopped before sending it; another one sent it, once."
NOT_SENT = (
    "The bot restarted before it could send this, and came back {minutes} minutes after you asked: "
    "later than it may send without asking you (RECOVERY_MAX_AGE). Nothing was sent."
)
# How far back, and how many pages of 200, a restarted bot reads a channel for cards it already posted.
HISTORY_PAGES = 5
HISTORY_SKEW = timedelta(minutes=1)
# Slack keeps a response_url usable for 30 minutes.
RESPONSE_URL_LIFE = timedelta(minutes=29)

FOUND_AFTER_RESTART = (
    "Posted after the bot restarted: Twilio had accepted the message before the restart, "
    "and nothing was re-sent."
)


def recovered_card(unposted: Unposted) -> Card:
    """The message as Twilio has it now, or the outcome the bot could not learn."""
    if unposted.message is not None:
        return cards.message_card(_facts(unposted, unposted.message))
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


class CardFinder:
    """The keys of the cards already in a channel (their message metadata), read once per channel."""

    def __init__(self, client: AsyncWebClient, *, pages: int = HISTORY_PAGES) -> None:
        self._client = client
        self._pages = pages
        self._cards: dict[str, dict[str, str]] = {}

    async def posted(self, channel: str, key: str, since: datetime | None) -> str | None:
        """The ts of the card for `key` among the channel's messages since `since`, or None (rows come
        oldest first, so the first read of a channel covers the later rows too)."""
        if channel not in self._cards:
            self._cards[channel] = await self._read(channel, since)
        return self._cards[channel].get(key)

    async def _read(self, channel: str, since: datetime | None) -> dict[str, str]:
        keys: dict[str, str] = {}
        oldest = f"{(since - HISTORY_SKEW).timestamp():.6f}" if since else "0"
        cursor: str | None = None
        try:
            for _ in range(self._pages):
                resp = await self._client.conversations_history(
                    channel=channel, oldest=oldest, limit=200, include_all_metadata=True, cursor=cursor
                )
                for message in resp.get("messages") or []:
                    meta = message.get("metadata") or {}
                    if meta.get("event_type") == CARD_EVENT:
                        keys[str((meta.get("event_payload") or {}).get("key") or "")] = str(message["ts"])
                cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
                if not resp.get("has_more") or not cursor:
                    break
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
            # No history scope, not a member, a private channel: cards lost in a crash are posted again.
            reason = err.response.get("error") if isinstance(err, SlackApiError) else type(err).__name__
            log.info("cannot read %s for cards already posted (%s)", channel, reason)
        return keys


def poster(
    delivery: Delivery,
    client: AsyncWebClient | Callable[[str], Awaitable[AsyncWebClient | None]],
    live: LiveStatus | None = None,
) -> Callable[[Unposted], Awaitable[bool]]:
    """What `Operations.recover` calls for each card: posts it, False when Slack cannot take it now.

    `client` is the bot's client, or (OAuth mode) a function giving a team's client, None once that
    workspace uninstalled the app; such a card is dropped, since no one there can see it any more.
    A card the stopped process had already posted (found by its metadata) is adopted, not posted again.
    With `live`, a recovered message card is followed like any other, so Twilio's reports redraw it.
    """
    # One finder a workspace: channels are read with that workspace's token, once each.
    finders: dict[str, CardFinder] = {}

    async def post(unposted: Unposted) -> bool:
        if isinstance(client, AsyncWebClient):
            team_client: AsyncWebClient | None = client
        else:
            team_client = await client(unposted.team_id)
        if team_client is None:
            log.info("dropped a recovered card: its workspace no longer has the app installed")
            return True
        try:
            channel, key = unposted.channel_id, unposted.key
            finder = finders.setdefault(unposted.team_id, CardFinder(team_client))
            ts = await finder.posted(channel, key, unposted.created_at) if channel and key else None
            if ts is not None:
                log.info("a card the stopped process posted was found in the channel; not posting it again")
            else:
                ts = await delivery.post(
                    team_client,
                    channel,
                    recovered_card(unposted),
                    response_url=unposted.response_url,
                    fallback_note=NOT_LIVE_HINT if live is not None and live.enabled else None,
                    metadata=card_metadata(key) if key else None,
                )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
            # Left as it is: the next start tries again.
            log.warning("could not post a recovered card yet: %s", type(err).__name__)
            return False
        if live is not None and unposted.message is not None:
            await _follow(live, unposted, unposted.message, ts)
        return True

    return post


def _facts(unposted: Unposted, message: Message) -> CardFacts:
    """What a recovered card is drawn from: the message as Twilio has it now, and who asked for it."""
    operation = "send" if unposted.operation == "send" else "schedule"
    return CardFacts(message, unposted.user_id, unposted.account_label, operation, note=FOUND_AFTER_RESTART)


async def _follow(live: LiveStatus, unposted: Unposted, message: Message, ts: str | None) -> None:
    facts = _facts(unposted, message)
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


async def run_accepted(
    deps: SlackDeps,
    clients: AsyncWebClient | Callable[[str], Awaitable[AsyncWebClient]],
    *,
    accepted_before: datetime | None = None,
    note: str = DELAYED_BY_RESTART,
) -> tuple[int, int]:
    """Run the creates a stopped process had accepted but not started; tell the too-old ones not sent.

    `clients` is the bot's client, or (OAuth mode) a function giving a workspace's client. A replica's
    lease round passes `accepted_before` (older than a lease: nobody alive is running them) and its `note`.
    """
    run_now, too_old = _accepted_handlers(deps, clients, note)
    return await deps.intake.recover(run_now=run_now, too_old=too_old, accepted_before=accepted_before)


async def run_handed_off(
    deps: SlackDeps,
    clients: AsyncWebClient | Callable[[str], Awaitable[AsyncWebClient]],
    *,
    accepted_before: datetime,
) -> tuple[int, int]:
    """A worker process's round (WORKER_PROCESS): run the creates the web processes accepted since the
    last round, as they would have run them; tell the too-old ones (the worker was down) not sent.
    Those accepted before `accepted_before` (the worker's start) waited for it: their card says so."""
    run_now, too_old = _accepted_handlers(deps, clients, DELAYED_BY_RESTART, noted_before=accepted_before)
    return await deps.intake.poll(run_now=run_now, too_old=too_old)


def _accepted_handlers(
    deps: SlackDeps,
    clients: AsyncWebClient | Callable[[str], Awaitable[AsyncWebClient]],
    note: str,
    *,
    noted_before: datetime | None = None,
) -> tuple[Callable[[Recovered], Awaitable[None]], Callable[[Recovered], Awaitable[bool]]]:
    """What runs an accepted create now, with `note` on its card (only if it was accepted before
    `noted_before`, when given), and what tells a too-old one it was not sent."""

    async def client_of(team_id: str) -> AsyncWebClient:
        return clients if isinstance(clients, AsyncWebClient) else await clients(team_id)

    async def run_now(item: Recovered) -> None:
        ctx = item.ctx
        client = await client_of(ctx.team_id)
        where = Where(
            channel_id=ctx.channel_id,
            user_id=ctx.user_id,
            response_url=ctx.response_url,
            # Only a slash command left a "Working on it…" note to take away.
            working_note=bool(ctx.response_url) and item.ticket.key.startswith(COMMAND_KEY_PREFIX),
        )
        job = Job(
            ctx,
            where,
            item.cmd,
            key=item.ticket.key,
            ticket=item.ticket,
            note=note if noted_before is None or item.accepted_at < noted_before else None,
        )
        try:
            deps.tasks.spawn(run(deps, client, job), name="accepted create")
        except ShuttingDown:
            item.ticket.lease.release()  # still in the journal for the next start

    async def too_old(item: Recovered) -> bool:
        ctx = item.ctx
        client = await client_of(ctx.team_id)
        age = deps.clock() - item.accepted_at
        fresh_url = ctx.response_url if age < RESPONSE_URL_LIFE else None
        card = cards.error_card(
            title=f"Not sent: your {item.cmd.subcommand}",
            sentence=NOT_SENT.format(minutes=int(age.total_seconds() // 60)),
            requested_by=ctx.user_id,
            reopen=(item.cmd.subcommand, prefill_from_command(item.cmd)),
        )
        try:
            await tell_user(deps, client, Where(ctx.channel_id, ctx.user_id, fresh_url), card)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
            log.warning("could not tell the user a request was not sent yet: %s", type(err).__name__)
            return False
        if fresh_url:
            await deps.delivery.dismiss(fresh_url)
        return True

    return run_now, too_old

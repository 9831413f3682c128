"""After the ack: run one Twilio command and put its outcome into Slack.

Slash commands, modal submissions and buttons all end here, so a card looks the same whichever way the
user asked, and every failure reaches the user as one sentence.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversations import Conversations
from bot.core.commands import (
    CancelCommand,
    FetchCommand,
    ListCommand,
    ScheduleCommand,
    SendCommand,
    TwilioCommand,
)
from bot.home import Home
from bot.installs import Installs
from bot.intake import Intake, Ticket
from bot.meter import NO_METER, Meter
from bot.operations import Context, DatabaseUnavailable, Duplicate, OperationError, Operations, Sent
from bot.services import Services
from bot.settings import Settings
from bot.slack import cards
from bot.slack.cards import Card
from bot.slack.delivery import NOT_LIVE_HINT, Delivery, Turn, card_metadata
from bot.slack.modals import prefill_from_command
from bot.slack.permissions import Permissions
from bot.status import CardFacts, LiveStatus
from bot.tasks import TaskTracker
from bot.twilio.errors import TwilioError
from bot.workspace import Workspace

log = logging.getLogger(__name__)

# A slash command's idempotency key: its trigger_id is unique to one invocation. Recovery tells a
# command's entry (which left a "Working on it…" note to take away) from a form's by this prefix.
COMMAND_KEY_PREFIX = "cmd:"


def command_key(team_id: str, trigger_id: object) -> str:
    """The idempotency key of the slash command with `trigger_id` (a fresh one when Slack sent none)."""
    return f"{COMMAND_KEY_PREFIX}{team_id}:{trigger_id or uuid.uuid4().hex}"


BUG_SENTENCE = (
    "Something went wrong on the bot's side after your request was accepted. If it was a send, check "
    "`/twilio list` before trying again: nothing is re-sent automatically. The details are in the bot's log."
)

STALE_PAGE_SENTENCE = (
    "That Next page button belongs to a Twilio account this workspace no longer uses under that label; "
    "run `/twilio list` again."
)

# The running command's place in its channel's queue of cards (set by `run`, used by `publish`).
_TURN: ContextVar[Turn | None] = ContextVar("card_turn", default=None)


@dataclass(frozen=True)
class SlackDeps:
    """What the Slack listeners use: the services, and the Slack door's own parts (delivery, permissions)."""

    settings: Settings
    operations: Operations
    workspace: Workspace
    tasks: TaskTracker
    clock: Callable[[], datetime]
    delivery: Delivery
    permissions: Permissions
    status: LiveStatus
    intake: Intake
    conversations: Conversations
    installs: Installs
    home: Home
    meter: Meter = NO_METER

    @classmethod
    def of(
        cls,
        settings: Settings,
        services: Services,
        *,
        delivery: Delivery,
        permissions: Permissions,
        meter: Meter = NO_METER,
    ) -> SlackDeps:
        """The Slack door over the process's services."""
        return cls(
            settings,
            services.operations,
            services.workspace,
            services.tasks,
            services.clock,
            delivery,
            permissions,
            services.status,
            services.intake,
            services.conversations,
            services.installs,
            services.home,
            meter,
        )


@dataclass(frozen=True)
class Where:
    """Where a result goes: the channel, the user, and the command's reply link if any."""

    channel_id: str | None
    user_id: str
    response_url: str | None = None
    # Set when a button asked: the card to update in place instead of posting a new one.
    message_ts: str | None = None
    # Set when the ack left a "Working on it…" note, to delete once the outcome is shown.
    working_note: bool = False


@dataclass(frozen=True)
class Job:
    """One Twilio command to run after the ack: who asked, where its outcome goes, and how to run it."""

    ctx: Context
    where: Where
    cmd: TwilioCommand
    # The create's idempotency key: claimed with Twilio, carried in its card (unused by views).
    key: str
    # Set by a Next page button: the Twilio page link to list instead of the command's first page.
    page_uri: str | None = None
    # An accepted create's journal entry: its lease goes to the create, and it is marked done once shown.
    ticket: Ticket | None = None
    # A line for the create's card, e.g. that a bot restart delayed it.
    note: str | None = None


def interaction_context(
    body: Mapping[str, Any], *, channel_id: str | None, response_url: str | None
) -> Context:
    """Who acted, from a (signed) interactivity payload: a button press or a form submission."""
    team = body.get("team") or {}
    user = body.get("user") or {}
    enterprise = body.get("enterprise")
    return Context(
        team_id=str(team.get("id") or user.get("team_id") or ""),
        enterprise_id=enterprise.get("id") if isinstance(enterprise, dict) else None,
        user_id=str(user.get("id") or ""),
        channel_id=channel_id,
        response_url=response_url,
    )


def next_page_value(uri: str, account: str, limit: int, scheduled_only: bool) -> str:
    """The Next page button's value; the page URI carries the filters."""
    return json.dumps({"uri": uri, "account": account, "limit": limit, "scheduled": scheduled_only})


async def tell_user(deps: SlackDeps, client: AsyncWebClient, where: Where, card: Card) -> None:
    """Show `card` to the asking user only."""
    try:
        if where.response_url:
            await deps.delivery.respond(where.response_url, card)
        elif where.channel_id:
            await client.chat_postEphemeral(
                channel=where.channel_id, user=where.user_id, text=card.text, blocks=list(card.blocks)
            )
        else:
            await client.chat_postMessage(channel=where.user_id, text=card.text, blocks=list(card.blocks))
    except SlackApiError:
        # The DM is the last place left to reach the user.
        await client.chat_postMessage(channel=where.user_id, text=card.text, blocks=list(card.blocks))


@dataclass(frozen=True)
class Posted:
    """Where a card went: its ts in the channel (None: through the response_url) and its log copy's."""

    ts: str | None
    log_channel: str | None = None
    log_ts: str | None = None


async def publish(
    deps: SlackDeps,
    client: AsyncWebClient,
    ctx: Context,
    where: Where,
    card: Card,
    *,
    mirror: bool = True,
    fallback_note: str | None = None,
    key: str | None = None,
) -> Posted:
    """Put a result card in the channel (or update the card a button was on), and mirror it to the log.

    `mirror=False` for views that change nothing (Refresh, Next page): the log channel is a record of
    operations, and a copy per click would bury them. `key`: the create's idempotency key, carried in
    the card's metadata so a restarted bot can find the card instead of posting it again.
    """
    ts: str | None = where.message_ts
    if where.message_ts and where.channel_id:
        await deps.delivery.update(
            client, where.channel_id, where.message_ts, card, response_url=where.response_url
        )
    else:
        turn = _TURN.get()
        if turn is not None:
            await turn.wait()
        try:
            ts = await deps.delivery.post(
                client,
                where.channel_id,
                card,
                response_url=where.response_url,
                user_id=where.user_id,
                fallback_note=fallback_note,
                metadata=card_metadata(key) if key else None,
            )
        finally:
            if turn is not None:
                turn.done()
    try:
        log_channel = await deps.workspace.log_channel(ctx.team_id) if mirror else None
    except DatabaseUnavailable as err:
        # The card is posted already; only its copy in the log channel is lost.
        log.warning("could not read the log channel to mirror a card: %s", err.detail)
        log_channel = None
    log_ts: str | None = None
    if log_channel and log_channel != where.channel_id:
        try:
            log_ts = await deps.delivery.post(client, log_channel, card)
        except SlackApiError as err:
            log.warning("could not mirror to the log channel: %s", err.response.get("error"))
    return Posted(ts, log_channel if log_ts else None, log_ts)


async def run(deps: SlackDeps, client: AsyncWebClient, job: Job) -> None:
    """Run `job` and post exactly one outcome for it; a create's card follows earlier creates' (bounded).

    An accepted create's ticket is marked done once its outcome is shown, not when the run is cancelled.
    """
    # Taken before the first await: tasks start in the order they were spawned, which is the order the
    # commands arrived in, whichever Twilio call then finishes first. Only creates queue: a view never
    # waits for someone else's send.
    creates = isinstance(job.cmd, SendCommand | ScheduleCommand)
    turn = (
        deps.delivery.turn(job.where.channel_id)
        if creates and job.where.channel_id and not job.where.message_ts
        else None
    )
    _TURN.set(turn)
    outcome = "error"  # unless _run returns: it raised while telling the user about a failure
    try:
        await deps.tasks.after_foreground()
        outcome = await _run(deps, client, job)
    except BaseException:
        if job.ticket is not None:
            # Cancelled (shut-down): not marked done, so the next start runs it or settles its claim.
            job.ticket.lease.release()
        raise
    finally:
        if turn is not None:
            turn.done()
        deps.meter.operation(job.cmd.subcommand, outcome)
    if job.ticket is not None:
        await deps.intake.finish(job.ticket)
    if job.where.working_note and job.where.response_url:
        await deps.delivery.dismiss(job.where.response_url)


async def _run(deps: SlackDeps, client: AsyncWebClient, job: Job) -> str:
    """Run `job` and show its outcome; returns the outcome's name for the metrics."""
    ctx, where, cmd = job.ctx, job.where, job.cmd
    name = cmd.subcommand
    ops = deps.operations
    try:
        if isinstance(cmd, SendCommand | ScheduleCommand):
            lease = job.ticket.lease if job.ticket is not None else None
            result = await ops.create(ctx, cmd, key=job.key, lease=lease)
            if isinstance(result, Duplicate):
                return "duplicate"  # the first delivery of this action owns the card
            card = cards.message_card(
                CardFacts(
                    result.message,
                    requested_by=ctx.user_id,
                    account_label=result.account.label,
                    operation="send" if isinstance(cmd, SendCommand) else "schedule",
                    send_at=result.send_at,
                    note=" ".join(n for n in (job.note, result.note) if n) or None,
                )
            )
            live = deps.status.enabled
            posted = await publish(
                deps, client, ctx, where, card, fallback_note=NOT_LIVE_HINT if live else None, key=job.key
            )
            await ops.card_posted(job.key)
            if live:
                await _follow(deps, result, where, posted)
        elif isinstance(cmd, ListCommand):
            try:
                page, account = await ops.list(ctx, cmd, page_uri=job.page_uri)
            except ValueError:
                if job.page_uri is None:
                    raise
                # The client refuses a link into another Twilio account than the label now names.
                raise OperationError(STALE_PAGE_SENTENCE) from None
            nxt = (
                next_page_value(page.next_page_uri, account.label, cmd.limit, cmd.scheduled_only)
                if page.next_page_uri
                else None
            )
            card = cards.list_card(
                page,
                requested_by=ctx.user_id,
                account_label=account.label,
                filters=_filters(cmd) if job.page_uri is None else _filters_of_link(job.page_uri),
                next_value=nxt,
                title="Scheduled messages" if cmd.scheduled_only else "Messages",
            )
            await publish(deps, client, ctx, where, card, mirror=job.page_uri is None)
        elif isinstance(cmd, FetchCommand):
            message, account = await ops.fetch(ctx, cmd)
            op: cards.Operation = "refresh" if where.message_ts else "fetch"
            card = cards.message_card(
                CardFacts(message, requested_by=ctx.user_id, account_label=account.label, operation=op)
            )
            await publish(deps, client, ctx, where, card, mirror=op == "fetch")
        elif isinstance(cmd, CancelCommand):
            message, account = await ops.cancel(ctx, cmd)
            card = cards.message_card(
                CardFacts(message, requested_by=ctx.user_id, account_label=account.label, operation="cancel")
            )
            await publish(deps, client, ctx, where, card)
        else:
            account = await ops.delete(ctx, cmd)
            card = cards.deleted_card(cmd.sid, requested_by=ctx.user_id, account_label=account.label)
            await publish(deps, client, ctx, where, card)
            await deps.status.forget(cmd.sid)  # a late report must not draw the message back
        return "ok"
    except OperationError as err:
        await tell_user(
            deps,
            client,
            where,
            cards.error_card(
                title=f"Could not {name}", sentence=err.message, requested_by=ctx.user_id, reopen=None
            ),
        )
        return "rejected"
    except TwilioError as err:
        await _twilio_failed(deps, client, job, err)
        return "unknown" if err.unknown_outcome else "twilio_error"
    except DatabaseUnavailable as err:
        # Raised only before anything reached Twilio: after a create, the operation keeps its bookkeeping
        # for later instead, so "nothing was sent" is true here.
        log.warning("%s refused: the database is not answering (%s)", name, err.detail)
        await tell_user(
            deps,
            client,
            where,
            cards.error_card(
                title=f"Could not {name}", sentence=str(err), requested_by=ctx.user_id, reopen=None
            ),
        )
        return "database_down"
    except Exception:
        log.exception("%s failed after the ack", name)
        try:
            await tell_user(
                deps,
                client,
                where,
                cards.error_card(
                    title=f"Could not {name}", sentence=BUG_SENTENCE, requested_by=ctx.user_id, reopen=None
                ),
            )
        except Exception:
            log.exception("could not tell the user either")
        return "error"


async def _follow(deps: SlackDeps, result: Sent, where: Where, posted: Posted) -> None:
    """Tell live status where the card went, so Twilio's reports can redraw it; never fails the command."""
    try:
        await deps.status.posted(
            result.message.sid,
            shown_status=result.message.status,
            channel_id=where.channel_id,
            card_ts=posted.ts,
            log_channel_id=posted.log_channel,
            log_ts=posted.log_ts,
        )
    except Exception:
        log.exception("could not note where the card of %s went: it will not update", result.message.sid)


async def _twilio_failed(deps: SlackDeps, client: AsyncWebClient, job: Job, err: TwilioError) -> None:
    ctx, where, cmd = job.ctx, job.where, job.cmd
    name = cmd.subcommand
    if err.unknown_outcome and isinstance(cmd, SendCommand | ScheduleCommand):
        # The team must see this one: a text may have gone out that nobody has a card for.
        card = cards.unknown_outcome_card(
            to=str(cmd.to),
            body=cmd.body,
            requested_by=ctx.user_id,
            account_label=cmd.account or "default",
            detail=str(err),
        )
        await publish(deps, client, ctx, where, card, key=job.key)
        await deps.operations.card_posted(job.key)
        return
    reopen = (name, prefill_from_command(cmd)) if not where.message_ts else None
    card = cards.error_card(
        title=f"Twilio could not {name} that", sentence=str(err), requested_by=ctx.user_id, reopen=reopen
    )
    await tell_user(deps, client, where, card)
    if isinstance(cmd, SendCommand | ScheduleCommand):
        await deps.operations.card_posted(job.key)


def _filters(cmd: ListCommand) -> str:
    parts = []
    if cmd.to:
        parts.append(f"to {cmd.to}")
    if cmd.from_:
        parts.append(f"from {cmd.from_}")
    if cmd.date_sent:
        parts.append(f"sent on {cmd.date_sent.isoformat()}")
    return ", ".join(parts) or "all messages"


def _filters_of_link(page_uri: str) -> str:
    """The filters a Next page link carries (the button's list command has none of its own)."""
    query = parse_qs(urlsplit(page_uri).query)
    parts = [f"{word} {query[name][0]}" for name, word in (("To", "to"), ("From", "from")) if name in query]
    if "DateSent" in query:
        parts.append(f"sent on {query['DateSent'][0][:10]}")
    return ", ".join(parts) or "all messages"

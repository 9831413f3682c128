"""The `/twilio` slash command: parse, ack within Slack's 3 seconds, then work in the background."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import requests as rq
from bot.core.commands import DESCRIPTIONS, USAGE, CommandError, parse_command
from bot.core.errors import InputError
from bot.intake import NotAccepted
from bot.operations import Context, DatabaseUnavailable, OperationError
from bot.slack import cards, conversation_cards
from bot.slack.modals import ModalMetadata, build_modal
from bot.slack.runner import Job, SlackDeps, Where, command_key, publish, run, tell_user
from bot.slack.text import escape
from bot.tasks import ShuttingDown

log = logging.getLogger(__name__)

COMMAND = "/twilio"
# The ack of a command that runs in the background; deleted once its card or error is shown.
WORKING_NOTE = ":hourglass_flowing_sand: Working on it…"
LOG_CHANNEL_UNREACHABLE = (
    "I cannot post in that channel (I am not a member of it), so no card can be copied there. "
    "Invite me to it with `/invite @Twilio Bridge`, or pick another channel."
)
LOG_CHANNEL_NOT_CHANGED = (
    "The bot's database is not answering, so the log channel was not changed. Try again in a minute."
)
NOT_ADMIN = (
    "Only workspace admins and owners (or users listed in ADMIN_USER_IDS) can {what}. "
    "Ask one of them, or use the messaging commands: `/twilio help`."
)


# Shut-down began after the request was written down: it stays in the journal for the next start.
SAVED_FOR_RESTART = (
    "The bot is restarting. Your request is saved and runs when the bot is back; if that takes too "
    "long, you will hear that it was not sent instead."
)

FORM_DID_NOT_OPEN = (
    "Slack did not let the form open (a form can open only within 3 seconds of the command or button); "
    "run the command or press the button again."
)


def context_of(command: dict[str, Any]) -> Context:
    """Who and where, from Slack's (signed) command payload."""
    return Context(
        team_id=str(command.get("team_id") or ""),
        enterprise_id=command.get("enterprise_id") or None,
        user_id=str(command.get("user_id") or ""),
        channel_id=command.get("channel_id") or None,
        response_url=command.get("response_url") or None,
    )


async def open_modal(
    deps: SlackDeps,
    client: AsyncWebClient,
    *,
    trigger_id: str,
    subcommand: str,
    prefill: dict[str, str],
    ctx: Context,
    problem: str | None = None,
) -> None:
    """Open the form for `subcommand`, prefilled; the trigger_id must be at most 3 seconds old."""
    try:
        accounts = await deps.workspace.accounts(ctx.team_id)
    except DatabaseUnavailable as err:
        await _database_down(deps, client, ctx, err, title="The form did not open")
        return
    # The IDs come from Slack's signed payload; a shape ModalMetadata refuses means a channel-less surface.
    try:
        metadata = ModalMetadata(
            channel_id=ctx.channel_id or "", response_url=ctx.response_url, user_id=ctx.user_id
        )
    except InputError:
        metadata = ModalMetadata(channel_id="", response_url=None, user_id=ctx.user_id)
    view = build_modal(
        subcommand, accounts=accounts, prefill=prefill, metadata=metadata, now=deps.clock(), problem=problem
    )
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as err:
        # Told here, not re-raised: an error after ack() makes slack_bolt 1.30 stall 3 s and answer 404.
        log.warning("could not open the %s form: %s", subcommand, err.response.get("error"))
        where = Where(channel_id=ctx.channel_id, user_id=ctx.user_id, response_url=ctx.response_url)
        card = cards.error_card(
            title="The form did not open", sentence=FORM_DID_NOT_OPEN, requested_by=ctx.user_id, reopen=None
        )
        await tell_user(deps, client, where, card)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Add the `/twilio` listener to `app`."""

    @app.command(COMMAND)
    async def twilio_command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        ctx = context_of(command)
        text = str(command.get("text") or "")
        first_word = text.split(None, 1)[0].lower() if text.strip() else "help"
        if deps.tasks.closing:
            deps.meter.command(first_word, "busy")
            await ack(text="The bot is restarting; nothing was done. Try again in a minute.")
            return
        try:
            parsed = parse_command(text, now=deps.clock(), default_region=deps.settings.default_region)
        except CommandError as err:
            deps.meter.command(first_word, "rejected")
            # The sentence quotes what the user typed: escaped, so `<!channel>` there stays text.
            await ack(text=f":warning: {escape(err.message)}\nUsage: `{escape(err.usage)}`")
            return

        if isinstance(parsed, rq.HelpCommand):
            unknown = parsed.topic if parsed.topic not in USAGE else None
            deps.meter.command(first_word, "unknown" if unknown and first_word != "help" else "ok")
            card = cards.help_card(USAGE, DESCRIPTIONS, unknown=unknown, live_status=deps.status.enabled)
            await ack(text=card.text, blocks=list(card.blocks))
            return
        if isinstance(parsed, rq.SetupCommand | rq.LogChannelCommand):
            what = "set up Twilio accounts" if isinstance(parsed, rq.SetupCommand) else "set the log channel"
            if not await deps.permissions.is_admin(client, ctx.team_id, ctx.user_id):
                deps.meter.command(parsed.subcommand, "denied")
                await ack(text=NOT_ADMIN.format(what=what))
                return
            if isinstance(parsed, rq.SetupCommand):
                deps.meter.command(parsed.subcommand, "form")
                await ack()
                await open_modal(
                    deps, client, trigger_id=command["trigger_id"], subcommand="setup", prefill={}, ctx=ctx
                )
                return
            try:
                await deps.workspace.set_log_channel(ctx, parsed.channel_id)
            except DatabaseUnavailable as err:
                log.warning("log channel not changed: the database is not answering (%s)", err.detail)
                deps.meter.command(parsed.subcommand, "database_down")
                await ack(text=LOG_CHANNEL_NOT_CHANGED)
                return
            deps.meter.command(parsed.subcommand, "ok")
            await ack(
                text=f"Every operation's card will also be posted in <#{parsed.channel_id}>."
                if parsed.channel_id
                else "The log channel is off: cards go only to the channel where each command ran."
            )
            if parsed.channel_id:
                where = Where(channel_id=ctx.channel_id, user_id=ctx.user_id, response_url=ctx.response_url)
                with contextlib.suppress(ShuttingDown):
                    deps.tasks.spawn(
                        _announce_log_channel(deps, client, ctx, where, parsed.channel_id), name="log channel"
                    )
            return
        if isinstance(parsed, rq.Incomplete):
            deps.meter.command(parsed.subcommand, "form")
            await ack()
            await open_modal(
                deps,
                client,
                trigger_id=command["trigger_id"],
                subcommand=parsed.subcommand,
                prefill=dict(parsed.prefill),
                ctx=ctx,
                problem=parsed.problem,
            )
            return

        where = Where(channel_id=ctx.channel_id, user_id=ctx.user_id, response_url=ctx.response_url)
        if isinstance(parsed, rq.RouteCommand | rq.UnrouteCommand) and not await deps.permissions.is_admin(
            client, ctx.team_id, ctx.user_id
        ):
            await ack(text=NOT_ADMIN.format(what="route numbers to channels"))
            return
        try:
            if isinstance(parsed, rq.RouteCommand | rq.RoutesCommand | rq.UnrouteCommand):
                deps.tasks.spawn(_routes(deps, client, ctx, where, parsed), name=parsed.subcommand)
                await ack()
            elif isinstance(parsed, rq.AccountsCommand):
                deps.tasks.spawn(_accounts(deps, client, ctx, where), name="accounts")
                await ack()
            elif isinstance(parsed, rq.HistoryCommand):
                deps.tasks.spawn(_history(deps, client, ctx, where, parsed.limit), name="history")
                await ack()
            elif isinstance(parsed, rq.SendCommand | rq.ScheduleCommand):
                await _accept_create(deps, client, ack, ctx, where, parsed, command)
                return
            else:
                key = command_key(ctx.team_id, command.get("trigger_id"))
                noted = dataclasses.replace(where, working_note=True)
                deps.tasks.spawn(run(deps, client, Job(ctx, noted, parsed, key=key)), name="twilio command")
                await ack(text=WORKING_NOTE)
            deps.meter.command(parsed.subcommand, "accepted")
        except ShuttingDown as err:
            deps.meter.command(parsed.subcommand, "busy")
            await ack(text=str(err))


async def _accept_create(
    deps: SlackDeps,
    client: AsyncWebClient,
    ack: AsyncAck,
    ctx: Context,
    where: Where,
    cmd: rq.SendCommand | rq.ScheduleCommand,
    command: dict[str, Any],
) -> None:
    """Write the create down, then ack: an acknowledged command survives a crash (bot.intake).

    Counted as accepted, or as busy when it was not taken on now (not written down, or the bot is
    shutting down).
    """
    key = command_key(ctx.team_id, command.get("trigger_id"))
    try:
        ticket = await deps.intake.accept(ctx, cmd, key=key)
    except NotAccepted as err:
        deps.meter.command(cmd.subcommand, "busy")
        await ack(text=f":warning: {err.message}")
        return
    if ticket is not None:
        noted = dataclasses.replace(where, working_note=True)
        try:
            job = Job(ctx, noted, cmd, key=key, ticket=ticket)
            deps.tasks.spawn(run(deps, client, job), name="twilio command")
        except ShuttingDown:
            ticket.lease.release()
            deps.meter.command(cmd.subcommand, "busy")
            await ack(text=SAVED_FOR_RESTART)
            return
    # No ticket: a worker process runs it (WORKER_PROCESS), or another delivery of it is being worked on.
    deps.meter.command(cmd.subcommand, "accepted")
    await ack(text=WORKING_NOTE)


async def answer_handed_off(
    deps: SlackDeps, client: AsyncWebClient, command: dict[str, Any]
) -> BoltResponse | None:
    """The HTTP door's short way for a complete `/twilio send` or `schedule` while worker processes run
    what is accepted (WORKER_PROCESS): written down and acknowledged here, without Bolt's dispatch.

    This is the request a burst is made of, and Bolt's dispatch cost more CPU than everything else in
    its ack (docs/internals.md). None for anything else (other subcommands, a form to open, a
    refusal, shutting down, OAuth mode, whose workspaces Bolt authorizes): Bolt dispatches it as usual.
    The answer is made by Bolt's own AsyncAck, so Slack gets what the listener would have sent.
    """
    if not deps.intake.hand_off or deps.settings.oauth_mode or deps.tasks.closing:
        return None
    text = command.get("text")
    if command.get("command") != COMMAND or not isinstance(text, str):
        return None
    words = text.split(None, 1)
    if not words or words[0].lower() not in {"send", "schedule"}:
        return None  # out before parsing: the listener parses everything else
    try:
        parsed = parse_command(text, now=deps.clock(), default_region=deps.settings.default_region)
    except CommandError:
        return None
    if not isinstance(parsed, rq.SendCommand | rq.ScheduleCommand):
        return None
    ctx = context_of(command)
    where = Where(channel_id=ctx.channel_id, user_id=ctx.user_id, response_url=ctx.response_url)
    ack = AsyncAck()  # type: ignore[no-untyped-call]  # slack_bolt leaves its __init__ unannotated
    await _accept_create(deps, client, ack, ctx, where, parsed, command)
    return ack.response


async def _announce_log_channel(
    deps: SlackDeps, client: AsyncWebClient, ctx: Context, where: Where, channel_id: str
) -> None:
    """Say hello in the new log channel, and tell the admin at once if the bot may not post there."""
    try:
        await deps.delivery.post(client, channel_id, cards.log_channel_card(set_by=ctx.user_id))
    except SlackApiError as err:
        log.info("cannot post in the new log channel: %s", err.response.get("error"))
        card = cards.error_card(
            title="The log channel will stay empty",
            sentence=LOG_CHANNEL_UNREACHABLE,
            requested_by=ctx.user_id,
            reopen=None,
        )
        await tell_user(deps, client, where, card)


async def _accounts(deps: SlackDeps, client: AsyncWebClient, ctx: Context, where: Where) -> None:
    try:
        accounts = await deps.workspace.accounts(ctx.team_id)
    except DatabaseUnavailable as err:
        await _database_down(deps, client, ctx, err, title="Could not list the accounts")
        return
    await tell_user(deps, client, where, cards.accounts_card(accounts))


async def _history(deps: SlackDeps, client: AsyncWebClient, ctx: Context, where: Where, limit: int) -> None:
    try:
        entries = await deps.workspace.history(ctx.team_id, limit)
    except DatabaseUnavailable as err:
        await _database_down(deps, client, ctx, err, title="Could not show the history")
        return
    await tell_user(deps, client, where, cards.history_card(entries))


async def _database_down(
    deps: SlackDeps, client: AsyncWebClient, ctx: Context, err: DatabaseUnavailable, *, title: str
) -> None:
    log.warning("%s: the database is not answering (%s)", title, err.detail)
    where = Where(channel_id=ctx.channel_id, user_id=ctx.user_id, response_url=ctx.response_url)
    card = cards.error_card(title=title, sentence=str(err), requested_by=ctx.user_id, reopen=None)
    await tell_user(deps, client, where, card)


async def _routes(
    deps: SlackDeps,
    client: AsyncWebClient,
    ctx: Context,
    where: Where,
    cmd: rq.RouteCommand | rq.RoutesCommand | rq.UnrouteCommand,
) -> None:
    """Route, list or unroute, and show the outcome."""
    if isinstance(cmd, rq.RoutesCommand):
        routes, unrouted, unshown = await deps.conversations.routes(ctx.team_id)
        await tell_user(deps, client, where, conversation_cards.routes_card(routes, unrouted, unshown))
        return
    if isinstance(cmd, rq.UnrouteCommand):
        removed = await deps.conversations.unroute(ctx.team_id, cmd.number)
        sentence = (
            f"Texts to {cmd.number} no longer open threads; they are stored and counted in `/twilio routes`."
            if removed
            else f"{cmd.number} is not routed in this workspace, so nothing changed."
        )
        await tell_user(deps, client, where, cards.notice_card(sentence))
        return
    try:
        view = await deps.conversations.route(ctx, cmd)
    except OperationError as err:
        card = cards.error_card(
            title="Could not route", sentence=err.message, requested_by=ctx.user_id, reopen=None
        )
        await tell_user(deps, client, where, card)
        return
    await publish(deps, client, ctx, where, conversation_cards.route_card(view, requested_by=ctx.user_id))

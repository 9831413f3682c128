"""Modal submissions: field errors go back on the form; valid input closes it and runs the command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.commands import Command, ScheduleCommand, SendCommand, TwilioCommand
from bot.core.errors import InputError
from bot.intake import NotAccepted, Ticket
from bot.operations import Context, DatabaseUnavailable
from bot.slack import cards
from bot.slack.commands import NOT_ADMIN, SAVED_FOR_RESTART
from bot.slack.forms import FieldErrors, parse_submission
from bot.slack.modals import CALLBACKS, ModalMetadata
from bot.slack.runner import Job, SlackDeps, Where, interaction_context, run, tell_user
from bot.tasks import ShuttingDown
from bot.workspace import AccountSetup, SetupRefused, StoredAccount

log = logging.getLogger(__name__)

_TWILIO_FORMS = re.compile(
    "^(" + "|".join(re.escape(cb) for sub, cb in CALLBACKS.items() if sub != "setup") + ")$"
)
# Setup checks the credentials with Twilio before answering; Slack wants the answer within 3 seconds.
SETUP_CHECK_SECONDS = 2.0
# The form's answer is due within Slack's 3 s: a database read before it may take this long at most.
ACK_READ_SECONDS = 2.0
SETUP_NOT_STORED = "The bot's database is not answering; nothing was stored. Try again in a minute."


def _first_input(view: dict[str, Any]) -> str:
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return "to"


async def _context(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> Context | None:
    """Who submitted and where the result goes; None, with the form told why, when that is unreadable."""
    try:
        meta = ModalMetadata.from_json(str(view.get("private_metadata") or ""))
    except InputError as err:
        await ack(response_action="errors", errors={_first_input(view): err.message})
        return None
    return interaction_context(body, channel_id=meta.channel_id or None, response_url=meta.response_url)


_Handler = Callable[[AsyncAck, dict[str, Any], AsyncWebClient, Context], Awaitable[None]]


def _submitted(app: AsyncApp, callback_id: str | re.Pattern[str]) -> Callable[[_Handler], _Handler]:
    """Listen for the submissions of `callback_id`'s forms; the handler gets who submitted, and where.

    A form whose metadata cannot be read is answered here, on the form, and never reaches the handler.
    """

    def listen(handle: _Handler) -> _Handler:
        @app.view(callback_id)
        async def submitted(
            ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
        ) -> None:
            ctx = await _context(ack, body, view)
            if ctx is not None:
                await handle(ack, view, client, ctx)

        return handle

    return listen


async def _parse(
    ack: AsyncAck, deps: SlackDeps, view: dict[str, Any], callback_id: str, accounts: Sequence[StoredAccount]
) -> Command | AccountSetup | None:
    """The submitted form's request; None, with its field errors sent back to the form, when invalid."""
    values = (view.get("state") or {}).get("values") or {}
    try:
        return parse_submission(
            callback_id,
            values,
            accounts=accounts,
            now=deps.clock(),
            default_region=deps.settings.default_region,
        )
    except FieldErrors as err:
        await ack(response_action="errors", errors=dict(err.errors))
        return None


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Add the view_submission listeners to `app`."""

    @_submitted(app, _TWILIO_FORMS)
    async def twilio_form(ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient, ctx: Context) -> None:
        try:
            accounts = await asyncio.wait_for(deps.workspace.accounts(ctx.team_id), ACK_READ_SECONDS)
        except (DatabaseUnavailable, TimeoutError) as err:
            log.warning("form refused: the database is not answering (%s)", getattr(err, "detail", "slow"))
            await ack(response_action="errors", errors={_first_input(view): DatabaseUnavailable.SENTENCE})
            return
        parsed = await _parse(ack, deps, view, str(view.get("callback_id")), accounts)
        if parsed is None:
            return
        if isinstance(parsed, AccountSetup):  # cannot happen for these callback ids
            await ack()
            return
        if deps.tasks.closing:
            await ack(
                response_action="errors",
                errors={_first_input(view): "The bot is restarting; try again in a minute."},
            )
            return
        cmd: TwilioCommand = parsed  # type: ignore[assignment]
        where = Where(channel_id=ctx.channel_id, user_id=ctx.user_id, response_url=ctx.response_url)
        # One modal view is one user action: a double-click or a redelivery has the same view id.
        key = f"view:{ctx.team_id}:{view.get('id')}"
        ticket: Ticket | None = None
        if isinstance(cmd, SendCommand | ScheduleCommand):
            # Written down before the form closes: an accepted send survives a crash (bot.intake).
            try:
                ticket = await deps.intake.accept(ctx, cmd, key=key)
            except NotAccepted as err:
                await ack(response_action="errors", errors={_first_input(view): err.message})
                return
            if ticket is None:  # a double-click: the first delivery is already working on it
                await ack()
                return
        try:
            deps.tasks.spawn(
                run(deps, client, Job(ctx, where, cmd, key=key, ticket=ticket)),
                name=f"modal {view.get('callback_id')}",
            )
        except ShuttingDown as err:
            if ticket is not None:
                ticket.lease.release()
                await ack(response_action="errors", errors={_first_input(view): SAVED_FOR_RESTART})
                return
            await ack(response_action="errors", errors={_first_input(view): str(err)})
            return
        await ack()

    @_submitted(app, CALLBACKS["setup"])
    async def setup_form(ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient, ctx: Context) -> None:
        if not await deps.permissions.is_admin(client, ctx.team_id, ctx.user_id):
            await ack(
                response_action="errors", errors={"label": NOT_ADMIN.format(what="set up Twilio accounts")}
            )
            return
        parsed = await _parse(ack, deps, view, CALLBACKS["setup"], [])
        if parsed is None:
            return
        if not isinstance(parsed, AccountSetup):
            await ack()
            return
        try:
            await deps.workspace.set_up_account(ctx, parsed, within=SETUP_CHECK_SECONDS)
        except SetupRefused as err:
            await ack(response_action="errors", errors={_setup_block(err, parsed): err.message[:300]})
            return
        except DatabaseUnavailable as err:
            log.warning("account not stored: the database is not answering (%s)", err.detail)
            await ack(response_action="errors", errors={"label": SETUP_NOT_STORED})
            return
        await ack()
        where = Where(channel_id=ctx.channel_id, user_id=ctx.user_id, response_url=ctx.response_url)
        with contextlib.suppress(ShuttingDown):  # the account is stored; the confirmation is a courtesy
            deps.tasks.spawn(_confirm_setup(deps, client, ctx, where), name="setup done")


def _setup_block(err: SetupRefused, setup: AccountSetup) -> str:
    """The setup form's input a refusal belongs under."""
    if err.field == "secret":
        return "api_secret" if setup.api_key_sid else "auth_token"
    if err.field == "webhook_token":
        return "auth_token"
    return "label" if err.field == "label" else "account_sid"


async def _confirm_setup(deps: SlackDeps, client: AsyncWebClient, ctx: Context, where: Where) -> None:
    """Show the admin the workspace's accounts, the new one among them."""
    await tell_user(deps, client, where, cards.accounts_card(await deps.workspace.accounts(ctx.team_id)))

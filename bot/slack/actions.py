"""Buttons on result cards: Refresh, Cancel, Delete, Next page, Edit and try again."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.commands import CancelCommand, DeleteCommand, FetchCommand, ListCommand
from bot.core.errors import InputError
from bot.core.rules import DEFAULT_PAGE_SIZE, check_account_label, check_sid, parse_page_size
from bot.operations import Context, OperationError
from bot.slack import cards
from bot.slack.cards import (
    ACTION_CANCEL,
    ACTION_DELETE,
    ACTION_NEXT_PAGE,
    ACTION_REFRESH,
    ACTION_REOPEN,
    parse_button_value,
    parse_reopen_value,
)
from bot.slack.commands import NOT_ADMIN, open_modal
from bot.slack.conversation_cards import ACTION_CLOSE, ACTION_POINT, parse_point_value, root_card, route_card
from bot.slack.modals import CALLBACKS
from bot.slack.runner import Job, SlackDeps, Where, interaction_context, run, tell_user
from bot.tasks import ShuttingDown
from bot.twilio.errors import TwilioError

log = logging.getLogger(__name__)


def context_of(body: dict[str, Any]) -> tuple[Context, Where]:
    """Who pressed the button and which card it was on, from Slack's (signed) block_actions payload."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    ctx = interaction_context(
        body, channel_id=str(channel) if channel else None, response_url=body.get("response_url") or None
    )
    ts = container.get("message_ts") if not container.get("is_ephemeral") else None
    return ctx, Where(
        channel_id=ctx.channel_id, user_id=ctx.user_id, response_url=ctx.response_url, message_ts=ts
    )


def _action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions") or [{}]
    first = actions[0]
    return first if isinstance(first, dict) else {}


def _sid_and_account(raw: str) -> tuple[str, str | None]:
    value = parse_button_value(raw)
    sid = check_sid(str(value.get("sid", "")), "message")
    return sid, value.get("account") or None


async def _button_failed(
    deps: SlackDeps,
    client: AsyncWebClient,
    ctx: Context,
    where: Where,
    sentence: str,
    *,
    title: str = "That button did not work",
) -> None:
    """Tell the person who pressed a button, alone, why nothing happened."""
    card = cards.error_card(title=title, sentence=sentence, requested_by=ctx.user_id, reopen=None)
    await tell_user(deps, client, where, card)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Add the card button listeners to `app`."""

    async def by_sid(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        build: type[FetchCommand | CancelCommand | DeleteCommand],
    ) -> None:
        await ack()
        ctx, where = context_of(body)
        try:
            sid, account = _sid_and_account(str(_action(body).get("value") or ""))
        except InputError as err:
            await _button_failed(deps, client, ctx, where, err.message)
            return
        cmd = build(sid=sid, account=account)
        kind = cmd.subcommand
        try:
            job = Job(ctx, where, cmd, key=f"act:{ctx.team_id}:{kind}:{sid}")
            deps.tasks.spawn(run(deps, client, job), name=kind)
        except ShuttingDown as err:
            await _button_failed(deps, client, ctx, where, str(err), title="Not now")

    @app.action(ACTION_REFRESH)
    async def refresh(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await by_sid(ack, body, client, FetchCommand)  # a fetch that updates its card

    @app.action(ACTION_CANCEL)
    async def cancel(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await by_sid(ack, body, client, CancelCommand)

    @app.action(ACTION_DELETE)
    async def delete(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await by_sid(ack, body, client, DeleteCommand)

    @app.action(ACTION_NEXT_PAGE)
    async def next_page(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        ctx, where = context_of(body)
        try:
            value = json.loads(str(_action(body).get("value") or ""))
            if not isinstance(value, dict) or not isinstance(value.get("uri"), str):
                raise ValueError
            limit = parse_page_size(value.get("limit") or DEFAULT_PAGE_SIZE)
            raw_account = value.get("account")
            account = check_account_label(raw_account) if isinstance(raw_account, str) else None
            cmd = ListCommand(
                to=None,
                from_=None,
                date_sent=None,
                limit=limit,
                account=account,
                scheduled_only=bool(value.get("scheduled")),
            )
        except (ValueError, InputError):
            await _button_failed(
                deps,
                client,
                ctx,
                where,
                "The Next page button carried something unreadable; run `/twilio list` again.",
            )
            return
        try:
            job = Job(ctx, where, cmd, key="", page_uri=value["uri"])
            deps.tasks.spawn(run(deps, client, job), name="next page")
        except ShuttingDown as err:
            await _button_failed(deps, client, ctx, where, str(err), title="Not now")

    @app.action(re.compile(f"^{re.escape(ACTION_REOPEN)}(:[a-z]+)?$"))
    async def reopen(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        ctx, where = context_of(body)
        try:
            subcommand, prefill = parse_reopen_value(str(_action(body).get("value") or ""))
            if subcommand not in CALLBACKS or subcommand == "setup":
                raise InputError("That button does not open a form.")
        except InputError as err:
            await _button_failed(deps, client, ctx, where, err.message)
            return
        await open_modal(
            deps,
            client,
            trigger_id=str(body.get("trigger_id") or ""),
            subcommand=subcommand,
            prefill=prefill,
            ctx=ctx,
        )

    @app.action(ACTION_CLOSE)
    async def close(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        ctx, where = context_of(body)
        raw = str(_action(body).get("value") or "")
        if not raw.isdigit() or len(raw) > 18:
            await _button_failed(deps, client, ctx, where, "That Close button carried something unreadable.")
            return
        conversation = await deps.conversations.close(ctx, int(raw))
        if conversation is None:
            await _button_failed(deps, client, ctx, where, "That conversation is not in this workspace.")
            return
        if where.message_ts and where.channel_id:
            await deps.delivery.update(client, where.channel_id, where.message_ts, root_card(conversation))

    @app.action(ACTION_POINT)
    async def point(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        ctx, where = context_of(body)
        if not await deps.permissions.is_admin(client, ctx.team_id, ctx.user_id):
            await _button_failed(deps, client, ctx, where, NOT_ADMIN.format(what="point numbers at the bot"))
            return
        try:
            number = parse_point_value(str(_action(body).get("value") or ""))
            view = await deps.conversations.point(ctx, number)
        except ValueError:
            await _button_failed(deps, client, ctx, where, "That button carried something unreadable.")
            return
        except OperationError as err:
            await _button_failed(deps, client, ctx, where, err.message)
            return
        except TwilioError as err:
            await _button_failed(deps, client, ctx, where, str(err), title="Twilio did not change the number")
            return
        card = route_card(view, requested_by=ctx.user_id)
        if where.message_ts and where.channel_id:
            await deps.delivery.update(
                client, where.channel_id, where.message_ts, card, response_url=where.response_url
            )
        else:
            await tell_user(deps, client, where, card)

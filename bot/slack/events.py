"""Slack `message` events: a person's message in a conversation thread goes back as a text.

Every message event is taken (so none gets Bolt's 404 and a Slack retry); the work runs after Bolt's
ack, and the conversations service decides what a message is: a reply, a note, or nothing of ours.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversations import ReplyOutcome, ReplyRequest
from bot.media_links import FileRef
from bot.slack.runner import SlackDeps
from bot.slack.threads import REACTION_FAILED, REACTION_SENT, notice_card
from bot.tasks import ShuttingDown

log = logging.getLogger(__name__)


def reply_request(body: dict[str, Any], event: dict[str, Any]) -> ReplyRequest:
    """The fields of a (signed) message event the conversations service needs."""
    return ReplyRequest(
        team_id=str(body.get("team_id") or event.get("team") or ""),
        channel_id=str(event.get("channel") or ""),
        user_id=str(event.get("user") or ""),
        ts=str(event.get("ts") or ""),
        thread_ts=str(event["thread_ts"]) if event.get("thread_ts") else None,
        text=str(event.get("text") or ""),
        event_id=str(body.get("event_id") or ""),
        subtype=str(event["subtype"]) if event.get("subtype") else None,
        bot_id=str(event["bot_id"]) if event.get("bot_id") else None,
        files=_files(str(body.get("team_id") or event.get("team") or ""), event.get("files")),
    )


def _files(team_id: str, raw: object) -> tuple[FileRef, ...]:
    """The files a message carries, as references the media links can name."""
    if not isinstance(raw, list):
        return ()
    refs = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("id"):
            continue
        size = item.get("size")
        refs.append(
            FileRef(
                team_id=team_id,
                file_id=str(item["id"]),
                url=str(item.get("url_private_download") or item.get("url_private") or ""),
                mimetype=str(item.get("mimetype") or "application/octet-stream"),
                name=str(item.get("name") or ""),
                size=size if isinstance(size, int) else None,
            )
        )
    return tuple(refs)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Add the catch-all `message` listener to `app`."""

    @app.event("message")
    async def on_message(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient) -> None:
        req = reply_request(body, event)
        if not req.thread_ts or req.thread_ts == req.ts or req.bot_id:
            return  # not a reply in a thread: nothing of ours
        try:
            deps.tasks.spawn(_reply(deps, client, req), name="thread reply")
        except ShuttingDown:
            # Bolt has acked already; the message stays unsent and a restart does not see it again.
            log.warning("a thread reply arrived while shutting down; not sent")


async def _reply(deps: SlackDeps, client: AsyncWebClient, req: ReplyRequest) -> None:
    outcome = await deps.conversations.reply(req)
    try:
        await _show(deps, client, req, outcome)
    except SlackApiError as err:
        log.warning("could not show a reply's outcome in its thread: %s", err.response.get("error"))
    if outcome.key is not None:
        await deps.conversations.replied(outcome.key)


async def _show(deps: SlackDeps, client: AsyncWebClient, req: ReplyRequest, outcome: ReplyOutcome) -> None:
    if outcome.kind in {"sent", "failed"}:
        name = REACTION_SENT if outcome.kind == "sent" else REACTION_FAILED
        try:
            await client.reactions_add(channel=req.channel_id, timestamp=req.ts, name=name)
        except SlackApiError as err:
            # The thread line below still says what happened; a missing reaction is only cosmetic.
            log.warning("could not react to a reply: %s", err.response.get("error"))
    if outcome.sentence and req.thread_ts:
        card = notice_card(outcome.sentence)
        await deps.delivery.post_in_thread(client, req.channel_id, req.thread_ts, card)

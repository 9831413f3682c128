"""The App Home tab: `app_home_opened` publishes the workspace's summary (one `views.publish` an open).

Admins get a button that opens the account set-up form; everyone else sees who to ask.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.operations import Context
from bot.slack import cards
from bot.slack.commands import open_modal
from bot.slack.runner import SlackDeps

log = logging.getLogger(__name__)


async def publish_home(deps: SlackDeps, client: AsyncWebClient, team_id: str, user_id: str) -> None:
    """Build the person's Home tab for the workspace and publish it."""
    summary = await deps.home.summary(team_id, user_id)
    is_admin = await deps.permissions.is_admin(client, team_id, user_id)
    view = cards.home_view(
        summary, viewer=user_id, is_admin=is_admin, listed_admins=sorted(deps.settings.admin_user_ids)
    )
    try:
        await client.views_publish(user_id=user_id, view=view)
    except SlackApiError as err:
        log.warning("could not publish the Home tab: %s", err.response.get("error"))


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """The Home tab listener and its set-up button."""

    @app.event("app_home_opened")
    async def home_opened(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab: nothing to draw
        team_id = str(body.get("team_id") or event.get("view", {}).get("team_id") or "")
        user_id = str(event.get("user") or "")
        if not team_id or not user_id:
            return
        # Tracked, so shut-down waits for it and tests can wait for it.
        deps.tasks.spawn(publish_home(deps, client, team_id, user_id), name="home tab")

    @app.action(cards.ACTION_HOME_SETUP)
    async def setup(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        team_id = str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or "")
        user_id = str((body.get("user") or {}).get("id") or "")
        ctx = Context(team_id=team_id, user_id=user_id, channel_id=None)
        if not await deps.permissions.is_admin(client, team_id, user_id):
            return  # the button is shown to admins only; the set-up form checks again on submit
        await open_modal(
            deps,
            client,
            trigger_id=str(body.get("trigger_id") or ""),
            subcommand="setup",
            prefill={},
            ctx=ctx,
        )

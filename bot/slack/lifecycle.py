"""Uninstall forgets: `app_uninstalled` and `tokens_revoked` delete a workspace's tokens and Twilio accounts.

Both events may arrive, in either order; forgetting twice is harmless. The audit log stays (it holds no
secrets) and gets one line saying what was removed.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.runner import SlackDeps

log = logging.getLogger(__name__)


async def _forget(deps: SlackDeps, body: dict[str, Any], why: str) -> None:
    team_id = body.get("team_id")
    enterprise_id = body.get("enterprise_id")
    org_wide = bool(body.get("is_enterprise_install"))
    gone = await deps.installs.forget(
        team_id=None if org_wide else team_id,
        enterprise_id=enterprise_id,
        is_enterprise_install=org_wide,
        why=why,
    )
    log.info(
        "forgot workspace %s (%s): %d installation(s), %d Twilio account(s), %d route(s), %d conversation(s)",
        enterprise_id if org_wide else team_id,
        why,
        gone.installations,
        gone.accounts,
        gone.routes,
        gone.conversations,
    )


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """The uninstall listeners."""

    @app.event("app_uninstalled")
    async def uninstalled(body: dict[str, Any]) -> None:
        # Tracked, so shut-down waits for it (and tests can): the forgetting is never left half done.
        deps.tasks.spawn(_forget(deps, body, "app uninstalled"), name="forget workspace")

    @app.event("tokens_revoked")
    async def revoked(body: dict[str, Any], event: dict[str, Any]) -> None:
        if (event.get("tokens") or {}).get("bot"):
            deps.tasks.spawn(_forget(deps, body, "bot token revoked"), name="forget workspace")
        # Revoked user tokens change nothing: the bot keeps none.

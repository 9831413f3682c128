"""The whole bot on loopback for end-to-end tests: the real server, the Slack and Twilio simulators.

Tests act as Slack users through `stack.slack` (signed requests to the bot's /slack/events) and look at
what Slack and Twilio received. `await stack.settle()` waits until the bot's background work is done, so
no test sleeps for timing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, TEAM_ID, SlackSimulator
from bot.sandbox.twilio import (
    DEFAULT_FROM,
    DEFAULT_SERVICE_SID,
    SANDBOX_ACCOUNT_SID,
    SimClock,
    TwilioSimulator,
)
from bot.server import RUNTIME, Runtime, start_server
from bot.settings import Settings
from storage.accounts import StoredAccount

OTHER_TEAM = "T0OTHERTEAM"
OTHER_ACCOUNT_SID = "AC" + "b" * 32


@dataclass
class Stack:
    """A running bot with its simulated far ends."""

    slack: SlackSimulator
    twilio: TwilioSimulator
    runner: web.AppRunner
    bot_url: str
    settings: Settings
    twilio_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    bot_token: str = field(repr=False)

    @property
    def runtime(self) -> Runtime:
        """The bot's runtime (storage, deps) for assertions on state."""
        return self.runner.app[RUNTIME]

    async def settle(self) -> None:
        """Wait until every background task the bot started has finished."""
        await self.runtime.deps.tasks.idle()

    async def command(self, text: str, *, user_id: str = ADMIN_ID, channel_id: str = GENERAL_ID) -> Any:
        """Run `/twilio text` as a user, wait for the bot to finish, return Slack's view of the ack."""
        resp = await self.slack.slash_command(text, user_id=user_id, channel_id=channel_id)
        await self.settle()
        return resp

    def cards(self, channel_id: str = GENERAL_ID) -> list[dict[str, Any]]:
        """Messages the bot posted in `channel_id`, oldest first."""
        return [m for m in self.slack.messages(channel_id) if m.get("bot_id") or m.get("user") == "U0BOT"]

    def ephemeral_texts(self, user_id: str = ADMIN_ID) -> list[str]:
        """Everything shown to `user_id` alone, as text (fallback plus blocks), oldest first."""
        out = []
        for e in self.slack.ephemerals:
            if e.get("user") == user_id:
                out.append(str(e.get("text") or "") + "\n" + json_text(e.get("blocks") or []))
        return out

    async def add_account(
        self,
        *,
        team_id: str = TEAM_ID,
        label: str = "main",
        sid: str = SANDBOX_ACCOUNT_SID,
        token: str | None = None,
    ) -> StoredAccount:
        """Store a Twilio account for a team, as /twilio setup would."""
        return await self.runtime.deps.accounts.add(
            team_id=team_id,
            label=label,
            account_sid=sid,
            secret=token or self.twilio_token,
            default_from=DEFAULT_FROM,
            default_service_sid=DEFAULT_SERVICE_SID,
            added_by=ADMIN_ID,
        )


def json_text(blocks: Any) -> str:
    """All text inside Block Kit blocks, joined, for assertions on what a user reads."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


async def start_stack(
    db_path: Path,
    *,
    clock: SimClock | None = None,
    bot_clock: Callable[[], datetime] | None = None,
    with_account: bool = True,
    **settings: Any,
) -> Stack:
    """Start Twilio and Slack simulators and the real bot server wired to them."""
    sim_clock = clock or SimClock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    twilio = TwilioSimulator(sim_clock)
    twilio_url = await twilio.start()
    token = twilio.add_sandbox_account()
    twilio.add_account(
        OTHER_ACCOUNT_SID, "other-team-token-" + secrets.token_hex(8), numbers=("+15550000001",)
    )
    signing_secret = secrets.token_hex(16)
    bot_token = "xoxb-test-" + secrets.token_hex(8)
    slack = SlackSimulator(signing_secret=signing_secret, bot_token=bot_token)
    await slack.start()
    config = Settings(
        slack_signing_secret=signing_secret,
        slack_bot_token=bot_token,
        slack_api_url=slack.api_url,
        twilio_api_url=twilio_url,
        database_path=db_path,
        **settings,
    )
    runner, bot_url = await start_server(config, host="127.0.0.1", port=0, clock=bot_clock or sim_clock.now)
    slack.set_bot_url(f"{bot_url}/slack/events")
    stack = Stack(slack, twilio, runner, bot_url, config, token, signing_secret, bot_token)
    await stack.settle()  # start-up recovery
    if with_account:
        await stack.add_account()
    return stack


async def stop_stack(stack: Stack) -> None:
    """Stop the bot (draining its work) and both simulators."""
    await stack.runner.cleanup()
    await stack.slack.stop()
    await stack.twilio.stop()

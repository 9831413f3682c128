"""The whole bot on loopback for end-to-end tests: the real server, the Slack and Twilio simulators.

Tests act as Slack users through `stack.slack` (signed requests to the bot's /slack/events) and look at
what Slack and Twilio received. `await stack.settle()` waits until the bot's background work is done, so
no test sleeps for timing (and no read races the bot).
"""

from __future__ import annotations

import asyncio
import errno
import json
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import slack_bolt
from aiohttp import web
from signing import post
from waiting import until

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, TEAM_ID, SlackResponse, SlackSimulator
from bot.sandbox.twilio import (
    DEFAULT_FROM,
    DEFAULT_SERVICE_SID,
    SANDBOX_ACCOUNT_SID,
    SimClock,
    TwilioSimulator,
)
from bot.server import RUNTIME, Runtime, start_server
from bot.settings import Settings
from bot.tasks import TaskTracker
from storage.accounts import NewAccount, StoredAccount

BOLT_DIR = str(Path(slack_bolt.__file__).parent)
# The longest a test's background work may take: a Twilio timeout with its retries, on two busy cores.
SETTLE_SECONDS = 30.0
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
    other_token: str = field(default="", repr=False)
    extra_slacks: list[SlackSimulator] = field(default_factory=list)

    @property
    def runtime(self) -> Runtime:
        """The bot's runtime (storage, deps) for assertions on state."""
        return self.runner.app[RUNTIME]

    async def settle(self, *, timeout: float = SETTLE_SECONDS) -> None:
        """Wait until every background task the bot started has finished, Bolt's listeners included."""
        await settle(self.runtime, timeout=timeout)

    async def command(self, text: str, *, user_id: str = ADMIN_ID, channel_id: str = GENERAL_ID) -> Any:
        """Run `/twilio text` as a user, wait for the bot to finish, return Slack's view of the ack."""
        resp = await self.slack.slash_command(text, user_id=user_id, channel_id=channel_id)
        await self.settle()
        return resp

    def cards(self, channel_id: str = GENERAL_ID) -> list[dict[str, Any]]:
        """Messages the bot posted in `channel_id`, oldest first."""
        return [m for m in self.slack.messages(channel_id) if m.get("bot_id") or m.get("user") == "U0BOT"]

    def last_card(self, channel_id: str = GENERAL_ID) -> dict[str, Any]:
        """The newest message the bot posted in `channel_id` (AssertionError when there is none)."""
        cards = self.cards(channel_id)
        assert cards, f"no card in {channel_id}"
        return cards[-1]

    def opened_view(self) -> dict[str, Any]:
        """The view the bot opened last (views.open), as Slack shows it now (with its id)."""
        opened = [c for c in self.slack.calls_to("views.open") if c.ok]
        assert opened, "the bot opened no view"
        view_id = opened[-1].response["view"]["id"]
        views = self.slack.views
        assert view_id in views, f"view {view_id} is no longer open"
        return views[view_id]

    async def submit(
        self,
        view_id: str,
        fields: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        validate: bool = True,
    ) -> SlackResponse:
        """Fill `fields` (block_id → plain value) into an open view, press submit, wait for the bot.

        `validate=False` skips the checks Slack's own client makes (required, max_length), to see the bot's.
        """
        view = self.slack.views[view_id]
        values = form_values(view, fields or {})
        resp = await self.slack.submit_view(view_id, values, user_id=user_id, validate=validate)
        await self.settle()
        return resp

    async def click(
        self,
        message: Mapping[str, Any],
        action_id: str,
        *,
        user_id: str = ADMIN_ID,
        channel_id: str = GENERAL_ID,
    ) -> SlackResponse:
        """Click a button on a message (or ephemeral) as a user, and wait for the bot."""
        resp = await self.slack.click(channel_id, str(message["ts"]), action_id, user_id=user_id)
        await self.settle()
        return resp

    async def post_signed(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        signature: str | None = None,
    ) -> tuple[int, str]:
        """POST a form body to /slack/events signed like Slack (or not: pass `signature=""`)."""
        if signature == "":
            return await post(self.bot_url, body, secret=None)
        forged = {"X-Slack-Signature": signature} if signature else None
        return await post(
            self.bot_url, body, secret=secret or self.signing_secret, timestamp=timestamp, headers=forged
        )

    async def post_interaction(self, payload: Mapping[str, Any]) -> tuple[int, str]:
        """POST an interactivity payload (block_actions, view_submission) signed with our secret."""
        return await self.post_signed(urlencode({"payload": json.dumps(payload)}).encode())

    async def slack_for_team(self, team_id: str) -> SlackSimulator:
        """A second Slack client whose requests are signed for `team_id` (same app, same secret)."""
        other = SlackSimulator(signing_secret=self.signing_secret, bot_token=self.bot_token, team_id=team_id)
        await other.start()
        other.set_bot_url(f"{self.bot_url}/slack/events")
        self.extra_slacks.append(other)
        return other

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
        default_from: str | None = DEFAULT_FROM,
        default_service_sid: str | None = DEFAULT_SERVICE_SID,
    ) -> StoredAccount:
        """Store a Twilio account for a team, as /twilio setup would."""
        return await self.runtime.stores.accounts.add(
            NewAccount(
                team_id=team_id,
                label=label,
                account_sid=sid,
                secret=token or self.twilio_token,
                default_from=default_from,
                default_service_sid=default_service_sid,
                added_by=ADMIN_ID,
            )
        )


async def settle(runtime: Runtime, *, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until a bot's tracked tasks and Bolt's listener tasks on this loop have all finished."""
    await until(_quiet(runtime.deps.tasks), timeout=timeout, what="the bot's background work")


async def _quiet(tasks: TaskTracker) -> None:
    while True:
        await tasks.idle()
        listeners = _bolt_listeners()
        if not listeners:
            if not len(tasks):
                return
            continue
        await asyncio.wait(listeners)


def _bolt_listeners() -> set[asyncio.Task[Any]]:
    """Bolt's own tasks on this loop: a listener goes on running after its ack has been answered.

    With `process_before_response=False` Bolt answers the HTTP request as soon as the listener acks and
    lets the rest of it (a views.open after the admin check, say) run as a task we do not track.
    """
    found = set()
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and code.co_filename.startswith(BOLT_DIR):
            found.add(task)
    return found


def card_text(message: Mapping[str, Any]) -> str:
    """What a user reads in a message: its fallback text and every text in its blocks."""
    return str(message.get("text") or "") + "\n" + json_text(message.get("blocks") or [])


def buttons(message: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's buttons by action_id."""
    found: dict[str, dict[str, Any]] = {}
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            for element in block.get("elements") or []:
                found[str(element.get("action_id"))] = element
    return found


def _inputs(view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(b["block_id"]): b["element"]
        for b in view.get("blocks") or []
        if b.get("type") == "input" and isinstance(b.get("element"), dict)
    }


def initial_values(view: Mapping[str, Any]) -> dict[str, Any]:
    """Each input's prefilled value, by block_id (None when empty)."""
    out: dict[str, Any] = {}
    for block_id, el in _inputs(view).items():
        kind = el.get("type")
        if kind == "static_select":
            out[block_id] = (el.get("initial_option") or {}).get("value")
        elif kind == "checkboxes":
            out[block_id] = [o.get("value") for o in el.get("initial_options") or []]
        elif kind == "datepicker":
            out[block_id] = el.get("initial_date")
        elif kind == "datetimepicker":
            out[block_id] = el.get("initial_date_time")
        else:
            out[block_id] = el.get("initial_value")
    return out


def form_values(view: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Plain values (block_id → str, int, bool or None) as Slack's `state.values` for `view`'s inputs."""
    inputs = _inputs(view)
    out: dict[str, dict[str, Any]] = {}
    for block_id, value in fields.items():
        el = inputs.get(block_id)
        assert el is not None, f"the form has no input {block_id!r}: {sorted(inputs)}"
        kind = el.get("type")
        if kind == "static_select":
            state: dict[str, Any] = {
                "selected_option": None
                if value is None
                else {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}
            }
        elif kind == "checkboxes":
            opts = el.get("options") or []
            state = {"selected_options": opts[:1] if value else []}
        elif kind == "datepicker":
            state = {"selected_date": value}
        elif kind == "datetimepicker":
            state = {"selected_date_time": value}
        else:
            state = {"value": value}
        out[block_id] = {str(el["action_id"]): state}
    return out


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
    live_status: bool = False,
    **settings: Any,
) -> Stack:
    """Start Twilio and Slack simulators and the real bot server wired to them.

    `live_status=True` sets PUBLIC_URL to the bot's own loopback address (a port chosen up front), so
    creates carry StatusCallback and Twilio's callbacks (and texts to routed numbers) reach the bot.
    """
    sim_clock = clock or SimClock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    twilio = TwilioSimulator(sim_clock)
    twilio_url = await twilio.start()
    token = twilio.add_sandbox_account()
    other_token = "other-team-token-" + secrets.token_hex(8)
    twilio.add_account(OTHER_ACCOUNT_SID, other_token, numbers=("+15550000001",))
    signing_secret = secrets.token_hex(16)
    bot_token = "xoxb-test-" + secrets.token_hex(8)
    slack = SlackSimulator(signing_secret=signing_secret, bot_token=bot_token)
    await slack.start()
    try:
        for attempt in range(3):
            port = 0
            if live_status:
                # The address must be known before the bot listens on it; another process may take the
                # port in between (an outgoing connection's, say): then try another.
                port = free_port()
                settings["public_url"] = f"http://127.0.0.1:{port}"
            config = Settings(
                slack_signing_secret=signing_secret,
                slack_bot_token=bot_token,
                slack_api_url=slack.api_url,
                twilio_api_url=twilio_url,
                database_path=db_path,
                **settings,
            )
            try:
                runner, bot_url = await start_server(
                    config, host="127.0.0.1", port=port, clock=bot_clock or sim_clock.now
                )
                break
            except OSError as err:
                if not live_status or err.errno != errno.EADDRINUSE or attempt == 2:
                    raise
    except BaseException:
        await slack.stop()
        await twilio.stop()
        raise
    slack.set_bot_url(f"{bot_url}/slack/events")
    stack = Stack(slack, twilio, runner, bot_url, config, token, signing_secret, bot_token, other_token)
    await stack.settle()  # start-up recovery
    if with_account:
        await stack.add_account()
    return stack


def free_port() -> int:
    """A loopback port free right now (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def restart_bot(stack: Stack, *, clock: Callable[[], datetime]) -> None:
    """Stop the bot (draining its work) and start it again on the same port, database and simulators."""
    await stack.runner.cleanup()
    port = int(stack.bot_url.rsplit(":", 1)[1])
    stack.runner, stack.bot_url = await start_server(stack.settings, host="127.0.0.1", port=port, clock=clock)
    await stack.settle()  # start-up recovery and the refresh of live cards


async def stop_stack(stack: Stack) -> None:
    """Stop the bot (draining its work) and both simulators."""
    await stack.runner.cleanup()
    for other in stack.extra_slacks:
        await other.stop()
    await stack.slack.stop()
    await stack.twilio.stop()

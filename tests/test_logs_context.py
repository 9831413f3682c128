"""Logs say who and what: every line written for a Slack request carries its id, team, user and subcommand.

The real bot handles real requests from the Slack simulator (over HTTP and over Socket Mode), and the
tests read what the bot's own log handler writes, in the console format and in JSON.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from botproc import APP_TOKEN, FarEnds, store_account
from deliveries import interaction, last_body
from harness import Stack, start_stack, stop_stack
from signing import post
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from waiting import until

from bot import logs
from bot.sandbox.slack import ADMIN_ID, MEMBER_ID, PRIVATE_ID, TEAM_ID
from bot.sandbox.twilio import Fault
from bot.server import open_runtime
from bot.settings import Settings
from bot.slack.cards import ACTION_REFRESH

TO = "+15551234567"
FALLBACK = "falling back to response_url"  # logged by the command's background task, after the ack
FORMATS = ["console", "json"]
# The fields end at the first "]: " (a redacted value is "[redacted]", brackets and all).
_CONSOLE_HEAD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) +(?P<logger>\S+)"
    r"(?: \[(?P<fields>request_id=.*?)\])?: (?P<message>.*)$"
)


@dataclass(frozen=True)
class Line:
    """One log record as the handler wrote it: logger, message and the request fields it carries."""

    logger: str
    message: str
    fields: dict[str, str]

    @property
    def who(self) -> tuple[str, str, str, str]:
        """(request_id, team, user, subcommand), empty where absent."""
        f = self.fields
        return f.get("request_id", ""), f.get("team", ""), f.get("user", ""), f.get("subcommand", "")


class Captured:
    """What the bot's log handler wrote, in one format."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        """Everything written, as written."""
        return self.stream.getvalue()

    def lines(self) -> list[Line]:
        """Each record, parsed back (tracebacks and a message's later lines belong to their record)."""
        out: list[Line] = []
        for raw in self.text.splitlines():
            if self.fmt == "json":
                data = json.loads(raw)  # every record is exactly one JSON line
                fields = {k: data[k] for k in logs.CONTEXT_FIELDS if k in data}
                assert all(isinstance(v, str) and v for v in fields.values()), data
                out.append(Line(data["logger"], data["message"], fields))
            elif head := _CONSOLE_HEAD.match(raw):
                pairs = (head["fields"] or "").split()
                fields = dict(pair.split("=", 1) for pair in pairs)
                assert set(fields) <= set(logs.CONTEXT_FIELDS), raw
                out.append(Line(head["logger"], head["message"], fields))
        return out

    def saying(self, text: str) -> list[Line]:
        """The lines whose message contains `text`."""
        return [line for line in self.lines() if text in line.message]


@contextmanager
def captured(fmt: str, redactor: logs.RedactSecrets | None = None) -> Iterator[Captured]:
    """Every logger at DEBUG into the bot's own handler (`fmt` format), for the block."""
    out = Captured(fmt)
    handler = logs.handler(fmt, out.stream, redactor or logs.RedactSecrets())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    """The log format under test."""
    return str(request.param)


def by_request(lines: list[Line]) -> dict[str, set[tuple[str, str, str, str]]]:
    """Each request id with every (id, team, user, subcommand) its lines carry.

    The message events Slack sends for the bot's own posts (it subscribes to channel messages for
    conversations) are requests of their own, left out here: these tests follow the people's requests.
    """
    found: dict[str, set[tuple[str, str, str, str]]] = {}
    for line in lines:
        if line.fields and line.fields.get("subcommand") != "message":
            found.setdefault(line.fields.get("request_id", ""), set()).add(line.who)
    return found


# ── over HTTP ────────────────────────────────────────────────────────────────────────────────────────


async def test_a_command_and_its_work_after_the_ack_carry_one_context(stack: Stack, fmt: str) -> None:
    """Lines before the ack and from its background task after it carry one id, team, user, subcommand."""
    stack.twilio.inject(Fault("apply_then_hold", method="POST", path_contains="/Messages.json"))
    with captured(fmt) as out:
        ack = await stack.slack.slash_command(f"send {TO} hello there", channel_id=PRIVATE_ID)
        assert ack.status == 200
        async with asyncio.timeout(10):
            await stack.twilio.wait_held(1)
        before_release = len(out.lines())
        # The request has been answered: what follows is the background task's alone.
        assert stack.twilio.release_held() == 1
        await stack.settle()

    lines = out.lines()
    (fallback,) = out.saying(FALLBACK)
    request_id, team, user, subcommand = fallback.who
    assert re.fullmatch(r"[0-9a-f]{8}", request_id)
    assert (team, user, subcommand) == (TEAM_ID, ADMIN_ID, "send")
    ours = [line for line in lines if line.fields]
    assert {line.who for line in ours} == {fallback.who}
    before = [line for line in lines[:before_release] if line.fields]
    assert any(line.logger == "bot.slack.logcontext" for line in before)  # before the ack
    assert len([line for line in lines[before_release:] if line.fields]) >= 2  # after it, several
    assert "hello there" not in {v for line in ours for v in line.fields.values()}


async def test_two_requests_at_once_keep_their_own_context(stack: Stack, fmt: str) -> None:
    """Two users' commands running together: each line carries its own request's fields, none the other's."""
    stack.twilio.inject(Fault("apply_then_hold", method="POST", path_contains="/Messages.json", times=2))
    with captured(fmt) as out:
        acks = await asyncio.gather(
            stack.slack.slash_command(f"send {TO} from the admin", channel_id=PRIVATE_ID),
            stack.slack.slash_command(
                f"schedule {TO} in 2h from the member", user_id=MEMBER_ID, channel_id=PRIVATE_ID
            ),
        )
        assert [a.status for a in acks] == [200, 200]
        async with asyncio.timeout(10):
            await stack.twilio.wait_held(2)  # both background tasks are in flight at once
        stack.twilio.release_held()
        await stack.settle()

    groups = by_request(out.lines())
    assert len(groups) == 2, groups
    assert all(len(seen) == 1 for seen in groups.values()), groups  # no request's lines carry another's
    whos = {next(iter(seen)) for seen in groups.values()}
    assert {who[1:] for who in whos} == {(TEAM_ID, ADMIN_ID, "send"), (TEAM_ID, MEMBER_ID, "schedule")}
    assert {line.who for line in out.saying(FALLBACK)} == whos


async def test_a_redelivery_is_logged_with_the_first_deliverys_context(stack: Stack, fmt: str) -> None:
    """A Slack retry answered from the first delivery logs under the same id, team, user and subcommand."""
    with captured(fmt) as out:
        await stack.command("list", user_id=MEMBER_ID)
        status, _ = await post(
            stack.bot_url, last_body(stack.slack, "slash_command"), secret=stack.signing_secret
        )
        assert status == 200
        await stack.settle()

    (repeat,) = out.saying("repeated Slack request answered from the first delivery")
    assert repeat.who[1:] == (TEAM_ID, MEMBER_ID, "list")
    assert by_request(out.lines()) == {repeat.who[0]: {repeat.who}}


async def test_a_button_and_a_form_are_logged_by_action_and_callback(stack: Stack, fmt: str) -> None:
    """Interactivity names the button's action_id or the view's callback_id as the subcommand."""
    with captured(fmt) as out:
        await stack.command(f"send {TO} hello")
        await stack.click(stack.last_card(), ACTION_REFRESH)
        await stack.command("setup")
        view = stack.opened_view()
        await stack.submit(view["id"], {"label": "", "auth_token": "x" * 32}, validate=False)
    groups = by_request(out.lines())
    assert all(len(seen) == 1 for seen in groups.values()), groups
    assert sorted(who[1:] for seen in groups.values() for who in seen) == sorted(
        [
            (TEAM_ID, ADMIN_ID, "send"),
            (TEAM_ID, ADMIN_ID, ACTION_REFRESH),
            (TEAM_ID, ADMIN_ID, "setup"),
            (TEAM_ID, ADMIN_ID, "twilio_setup"),
        ]
    )


async def test_lines_outside_any_request_carry_no_request_fields(tmp_path: Path, fmt: str) -> None:
    """Start-up and shut-down, around a handled request, log with no request id, team, user or subcommand."""
    with captured(fmt) as out:
        stack = await start_stack(tmp_path / "bot.db")
        try:
            await stack.command(f"send {TO} hello", channel_id=PRIVATE_ID)
            logging.getLogger("bot.test").info("the test's own task, after the request")
        finally:
            await stop_stack(stack)
    lines = out.lines()
    assert out.saying(FALLBACK)[0].fields  # a request was handled, with its fields
    (own,) = out.saying("the test's own task, after the request")
    (shutdown,) = out.saying("shutting down: no new work")
    assert own.fields == {} and shutdown.fields == {}
    after = lines[lines.index(shutdown) :]
    assert after and all(not line.fields for line in after)


# ── secrets ──────────────────────────────────────────────────────────────────────────────────────────


async def test_a_token_typed_as_the_subcommand_is_never_logged(stack: Stack, fmt: str) -> None:
    """`/twilio <token> …` is logged with subcommand "?", and the token appears in no line at all."""
    token = "tok" + secrets.token_hex(16)
    with captured(fmt) as out:
        await stack.command(f"{token} {TO} hello")
    assert {who[1:] for seen in by_request(out.lines()).values() for who in seen} == {
        (TEAM_ID, ADMIN_ID, "?")
    }
    assert token not in out.text


async def test_ids_that_are_not_slacks_never_reach_the_request_fields(stack: Stack, fmt: str) -> None:
    """A signed payload whose team, user, action_id or callback_id hold something else is logged with "?"."""
    secret = "tok" + secrets.token_hex(16)
    shouting = secret.upper() + "0" * 20  # capitals and digits like a Slack ID, but too long for one
    button = {
        "type": "block_actions",
        "team": {"id": secret},
        "user": {"id": secret + "-user", "team_id": secret},
        "actions": [{"action_id": secret + "_action", "value": secret, "type": "button"}],
        "trigger_id": "1.2.3",
    }
    form = {
        "type": "view_submission",
        "team": {"id": shouting},
        "user": {"id": ADMIN_ID},
        "view": {"callback_id": "twilio_" + secret, "private_metadata": secret, "state": {"values": {}}},
    }
    with captured(fmt) as out:
        for payload in (button, form):
            await post(stack.bot_url, interaction(payload), secret=stack.signing_secret)
        await stack.settle()

    whos = {who for seen in by_request(out.lines()).values() for who in seen}
    assert {who[1:] for who in whos} == {("?", "?", "?"), ("?", ADMIN_ID, "?")}
    (refused,) = out.saying("refused a signed request")  # the form lacks a view id: the door's own line
    assert refused.who[1:] == ("?", ADMIN_ID, "?")
    fields = " ".join(v for line in out.lines() for v in line.fields.values())
    assert secret not in fields and secret.upper() not in fields


async def test_the_auth_token_typed_into_the_form_is_never_logged(stack: Stack, fmt: str) -> None:
    """Setting up an account with its auth token, logged at DEBUG in either format, leaves the token out."""
    token = "authtoken-" + secrets.token_hex(12)
    stack.twilio.add_sandbox_account(token)
    with captured(fmt) as out:
        await stack.command("setup")
        view = stack.opened_view()
        fields = {"label": "second", "account_sid": "AC" + "0" * 32, "auth_token": token}
        await stack.submit(view["id"], fields)
    assert by_request(out.lines())  # the requests were logged, with their fields
    assert token not in out.text


def test_a_registered_secret_is_redacted_from_the_request_fields_too(fmt: str) -> None:
    """The redaction guard scrubs the request fields as well as the message."""
    secret = "xoxb-" + secrets.token_hex(12)
    with (
        captured(fmt, logs.RedactSecrets([secret])) as out,
        logs.scope(logs.RequestContext("r1", team=TEAM_ID, user=secret, subcommand="send")),
    ):
        logging.getLogger("bot.test").warning("token %s in the message", secret)
    (line,) = out.saying("token")
    assert secret not in out.text
    assert line.fields == {"request_id": "r1", "team": TEAM_ID, "user": "[redacted]", "subcommand": "send"}
    assert line.message == "token [redacted] in the message"


# ── over Socket Mode ─────────────────────────────────────────────────────────────────────────────────


async def test_socket_mode_requests_carry_their_context_too(
    socket_far_ends: FarEnds, tmp_path: Path, fmt: str
) -> None:
    """Over Socket Mode (no HTTP door), a command's lines, after the ack too, carry its context."""
    ends = socket_far_ends
    db_path = tmp_path / "bot.db"
    await store_account(ends, db_path)
    settings = Settings(
        slack_bot_token=ends.bot_token,
        slack_app_token=APP_TOKEN,
        slack_api_url=ends.slack.api_url,
        twilio_api_url=ends.twilio.url,
        database_path=db_path,
        secret_key=ends.secret_key,
    )
    with captured(fmt) as out:
        # As `python -m bot socket` wires it (bot.server.run_socket_mode), in this process.
        runtime = await open_runtime(settings, mode="socket")
        handler = AsyncSocketModeHandler(runtime.bolt, APP_TOKEN)
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
            await until(lambda: ends.slack.socket_connected, what="the Socket Mode connection")
            first = await ends.slack.slash_command(f"send {TO} over the socket", channel_id=PRIVATE_ID)
            second = await ends.slack.slash_command("list", user_id=MEMBER_ID, channel_id=PRIVATE_ID)
            assert (first.error, second.error) == (None, None)
            await runtime.deps.tasks.idle()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
            await runtime.close(5.0)

    assert [d.transport for d in ends.slack.deliveries] == ["socket", "socket"]
    groups = by_request(out.lines())
    assert all(len(seen) == 1 for seen in groups.values()), groups
    assert {next(iter(seen))[1:] for seen in groups.values()} == {
        (TEAM_ID, ADMIN_ID, "send"),
        (TEAM_ID, MEMBER_ID, "list"),
    }
    fallbacks = out.saying(FALLBACK)
    assert {line.who[1:] for line in fallbacks} == {(TEAM_ID, ADMIN_ID, "send"), (TEAM_ID, MEMBER_ID, "list")}

"""WORKER_PROCESS: the HTTP door writes a complete `/twilio send` or `schedule` down and acks it itself,
without Bolt's dispatch (`commands.answer_handed_off`); every other request still goes through Bolt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from harness import Stack, start_stack, stop_stack

from bot.slack.commands import WORKING_NOTE
from bot.slack.oauth import NOT_INSTALLED
from storage.journal import Journal

pytestmark = pytest.mark.stack(worker_process=True)

TO = "+15551230003"


def bolt_dispatches(stack: Stack) -> list[str]:
    """The text of each slash command Bolt dispatches from now on (a global middleware records it)."""
    seen: list[str] = []

    async def record(body: dict[str, Any], next_: Callable[[], Awaitable[None]]) -> None:
        if "command" in body:
            seen.append(str(body.get("text")))
        await next_()

    stack.runtime.bolt.use(record)
    return seen


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (f"send {TO} hello from the door", {"to": TO, "body": "hello from the door"}),
        (f"schedule {TO} in 2h see you", {"to": TO, "body": "see you"}),
    ],
)
async def test_a_complete_create_is_written_down_and_acked_without_bolt(
    stack: Stack, text: str, fields: dict[str, str]
) -> None:
    """The ack is "Working on it…", the journal holds the request for a worker, Bolt never saw it."""
    seen = bolt_dispatches(stack)
    ack = await stack.command(text)
    assert (ack.status, ack.body) == (200, WORKING_NOTE)
    assert seen == []
    [entry] = await Journal(stack.runtime.db).open_entries()
    assert entry.subcommand == text.split()[0] and entry.done_at is None
    assert {name: entry.fields[name] for name in fields} == fields
    assert stack.twilio.creates() == []  # no worker runs here: only written down


@pytest.mark.parametrize(
    "text",
    ["help", "list", "accounts", "send", f"send {TO}", "send not-a-number hi", f"send {TO} hi --bogus x"],
)
async def test_everything_else_is_dispatched_by_bolt(stack: Stack, text: str) -> None:
    """Other subcommands, forms to open and refusals go through Bolt's listener, as without a worker."""
    seen = bolt_dispatches(stack)
    ack = await stack.command(text)
    assert ack.status == 200
    assert seen == [text]
    assert await Journal(stack.runtime.db).open_entries() == []


async def test_the_ack_is_the_one_the_listener_gives_without_a_worker(stack: Stack, tmp_path: Path) -> None:
    """Same status, body and content type as the Bolt listener's ack of the same send in one process."""
    one_process = await start_stack(tmp_path / "one.db")
    try:
        ours = await stack.command(f"send {TO} same answer")
        theirs = await one_process.command(f"send {TO} same answer")
    finally:
        await stop_stack(one_process)
    assert (ours.status, ours.body) == (theirs.status, theirs.body)
    assert ours.headers["Content-Type"] == theirs.headers["Content-Type"]


async def test_a_create_the_database_cannot_record_is_refused_in_words(stack: Stack) -> None:
    """With the journal unwritable the door's ack says so, as the listener's would; nothing is queued."""
    await stack.runtime.db.execute("DROP TABLE journal")  # every write to it now fails in SQLite itself
    ack = await stack.command(f"send {TO} never accepted")
    assert "The bot's database is not answering; nothing was sent." in ack.body
    assert "Working on it" not in ack.body


async def test_the_short_way_is_counted_like_the_listener(stack: Stack) -> None:
    """/metrics counts the request as a command "send" answered ok, and the command as accepted."""
    await stack.command(f"send {TO} counted")
    text = (await stack.runtime.metrics.render()).decode()
    assert 'bridge_slack_requests_total{kind="command",name="send",outcome="ok"} 1.0' in text
    assert 'bridge_commands_total{outcome="accepted",subcommand="send"} 1.0' in text


@pytest.mark.stack(worker_process=True, slack_client_id="1111.2222", slack_client_secret="secret")
async def test_oauth_mode_leaves_every_command_to_bolt(stack: Stack) -> None:
    """In OAuth mode Bolt authorizes each workspace, so even a complete send goes through it: from a
    workspace with no installation, Bolt's answer says so, and nothing is written down."""
    ack = await stack.command(f"send {TO} authorized by bolt")
    assert WORKING_NOTE not in ack.body
    assert NOT_INSTALLED in stack.ephemeral_texts()[-1]
    assert await Journal(stack.runtime.db).open_entries() == []

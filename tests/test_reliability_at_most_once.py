"""At most once: one user action makes at most one Twilio create, however often Slack delivers it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from deliveries import changed, interaction, last_body, outcomes
from harness import Stack, settle
from signing import post
from waiting import until

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID
from bot.sandbox.twilio import Fault
from bot.server import RUNTIME, start_server
from bot.slack.cards import ACTION_REFRESH, ACTION_REOPEN
from bot.slack.modals import ACTION_ID

TO = "+15551234567"
REJECTED_TO = "+15005550001"  # Twilio's magic number for 21211: the error card has "Edit and try again"
# Short Twilio timeouts and backoff, so fault paths stay quick.
pytestmark = pytest.mark.stack(twilio_backoff_base=0.01, twilio_timeout=2.0)


def send_values(body: str) -> dict[str, dict[str, Any]]:
    """What a user types into the send form."""
    return {"to": {ACTION_ID: {"value": TO}}, "body": {ACTION_ID: {"value": body}}}


async def open_send_form(stack: Stack) -> str:
    """`/twilio send` without a body opens the form; returns its view id."""
    await stack.command(f"send {TO}")
    return str(stack.opened_view()["id"])


async def test_a_double_clicked_submit_sends_once(stack: Stack) -> None:
    """Two submissions of the same modal view at once: one create, one card."""
    view_id = await open_send_form(stack)
    first, second = await asyncio.gather(
        stack.slack.submit_view(view_id, send_values("double click")),
        stack.slack.submit_view(view_id, send_values("double click")),
    )
    await stack.settle()
    assert (first.status, second.status) == (200, 200)
    assert len(stack.twilio.creates()) == 1
    assert len(outcomes(stack)) == 1


async def test_the_same_view_submission_delivered_twice_sends_once(stack: Stack) -> None:
    """The identical signed view_submission twice, concurrently: one create, and both get the same answer."""
    view_id = await open_send_form(stack)
    await stack.slack.submit_view(view_id, send_values("delivered twice"))
    await stack.settle()
    body = last_body(stack.slack, "view_submission")
    again = await asyncio.gather(
        post(stack.bot_url, body, secret=stack.signing_secret),
        post(stack.bot_url, body, secret=stack.signing_secret),
    )
    await stack.settle()
    assert [status for status, _ in again] == [200, 200]
    assert len(stack.twilio.creates()) == 1
    assert len(outcomes(stack)) == 1


async def test_a_slack_retry_of_a_slash_command_sends_once(stack: Stack) -> None:
    """A slash command redelivered with X-Slack-Retry-Num (same trigger_id): one create and one card."""
    first = await stack.command(f"send {TO} retried by slack")
    body = last_body(stack.slack, "slash_command")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    status, text = await post(stack.bot_url, body, secret=stack.signing_secret, headers=retry)
    await stack.settle()
    assert (status, text) == (first.status, first.body)
    assert len(stack.twilio.creates()) == 1
    assert len(outcomes(stack)) == 1


async def test_a_slash_command_delivered_twice_at_once_sends_once(stack: Stack) -> None:
    """The same signed slash command twice while the first is still at Twilio: one create, one card."""
    stack.twilio.inject(Fault("apply_then_hold", method="POST", path_contains="/Messages.json"))
    await stack.slack.slash_command(f"send {TO} racing myself")
    await until(stack.twilio.wait_held(), what="Twilio to hold the create")
    body = last_body(stack.slack, "slash_command")
    status, _ = await post(
        stack.bot_url, body, secret=stack.signing_secret, headers={"X-Slack-Retry-Num": "1"}
    )
    assert status == 200
    stack.twilio.release_held()
    await stack.settle()
    assert len(stack.twilio.creates()) == 1
    assert len(outcomes(stack)) == 1


async def test_the_same_button_press_delivered_twice_runs_once(stack: Stack) -> None:
    """A Refresh press delivered twice at once reads Twilio once and updates the card once."""
    await stack.command(f"send {TO} refresh me")
    card = stack.cards()[-1]
    await stack.slack.click(GENERAL_ID, card["ts"], ACTION_REFRESH)
    await stack.settle()
    body = last_body(stack.slack, "block_actions")
    reads = len([r for r in stack.twilio.requests if r.method == "GET"])
    updates = len(stack.slack.calls_to("chat.update"))
    await asyncio.gather(
        post(stack.bot_url, body, secret=stack.signing_secret),
        post(stack.bot_url, body, secret=stack.signing_secret),
    )
    await stack.settle()
    assert len([r for r in stack.twilio.requests if r.method == "GET"]) == reads
    assert len(stack.slack.calls_to("chat.update")) == updates
    assert len(stack.twilio.creates()) == 1


async def test_pressing_try_again_twice_creates_nothing_by_itself(stack: Stack) -> None:
    """'Edit and try again' twice opens forms and sends nothing; each submitted form is its own action."""
    await stack.command(f"send {REJECTED_TO} rejected once")
    [error] = [e for e in stack.slack.ephemerals if e.get("source") == "response_url"]
    for _ in range(2):
        await stack.slack.click(GENERAL_ID, error["ts"], ACTION_REOPEN)
    await stack.settle()
    assert stack.twilio.creates() == []
    opened = [c.response["view"] for c in stack.slack.calls_to("views.open") if c.ok]
    assert len({v["id"] for v in opened}) == 2

    # Slack shows the newest form; the older one was replaced. Submitting both (say, from two devices)
    # is two user actions, so both go out, once each.
    older, newer = opened
    await stack.slack.submit_view(newer["id"], send_values("from the newer form"))
    older_submission = {
        "type": "view_submission",
        "team": {"id": stack.slack.team_id, "domain": stack.slack.team_domain},
        "user": {"id": ADMIN_ID, "team_id": stack.slack.team_id},
        "api_app_id": "A0PLAYGRND",
        "trigger_id": "1.2.older-form",
        "view": {**older, "state": {"values": send_values("from the older form")}},
    }
    status, _ = await post(stack.bot_url, interaction(older_submission), secret=stack.signing_secret)
    await stack.settle()
    assert status == 200
    bodies = sorted(dict(r.form)["Body"] for r in stack.twilio.creates())
    assert bodies == ["from the newer form", "from the older form"]


async def test_two_replicas_on_one_database_send_a_shared_delivery_once(stack: Stack) -> None:
    """The same signed slash command delivered to two bot servers sharing one database: one create."""
    runner, url = await start_server(stack.settings, host="127.0.0.1", port=0, clock=stack.twilio.clock.now)
    try:
        await settle(runner.app[RUNTIME])
        stack.twilio.inject(Fault("latency", method="POST", path_contains="/Messages.json", seconds=0.2))
        await stack.slack.slash_command(f"send {TO} seen by two replicas")
        body = last_body(stack.slack, "slash_command")
        status, _ = await post(url, body, secret=stack.signing_secret, headers={"X-Slack-Retry-Num": "1"})
        assert status == 200
        await asyncio.gather(stack.settle(), settle(runner.app[RUNTIME]))

        # And both at the very same moment, as a load balancer retrying on another replica might.
        await stack.slack.slash_command(f"send {TO} warm-up for the simultaneous pair")
        await stack.settle()
        pair = changed(
            last_body(stack.slack, "slash_command"),
            text=f"send {TO} simultaneous",
            trigger_id="7.PLAYGRND.simultaneous",
        )
        answers = await asyncio.gather(
            post(stack.bot_url, pair, secret=stack.signing_secret),
            post(url, pair, secret=stack.signing_secret),
        )
        await asyncio.gather(stack.settle(), settle(runner.app[RUNTIME]))
    finally:
        await runner.cleanup()
    assert [status for status, _ in answers] == [200, 200]
    bodies = [dict(r.form)["Body"] for r in stack.twilio.creates()]
    assert sorted(bodies) == ["seen by two replicas", "simultaneous", "warm-up for the simultaneous pair"]
    assert len(stack.cards()) == 3


async def test_a_replica_starting_mid_create_leaves_the_row_to_its_owner(stack: Stack) -> None:
    """A second replica starting while the first waits on Twilio does not call the send unknown."""
    stack.twilio.inject(Fault("apply_then_hold", method="POST", path_contains="/Messages.json"))
    await stack.slack.slash_command(f"send {TO} owned by the first replica")
    await until(stack.twilio.wait_held(), what="Twilio to hold the create")
    runner, _ = await start_server(stack.settings, host="127.0.0.1", port=0, clock=stack.twilio.clock.now)
    try:
        await settle(runner.app[RUNTIME])  # its start-up recovery has run
        assert stack.cards() == []
        stack.twilio.release_held()
        await stack.settle()
    finally:
        await runner.cleanup()
    [card] = stack.cards()
    assert "owned by the first replica" in str(card.get("text")) + str(card.get("blocks"))
    assert "Outcome unknown" not in str(card.get("text"))
    assert len(stack.twilio.creates()) == 1

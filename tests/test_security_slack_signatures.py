"""Requests from outside: without Slack's valid, fresh signature a request gets 401 and does nothing."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from deliveries import db_snapshot, interaction
from harness import Stack
from signing import post, signature

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, TEAM_ID
from bot.sandbox.twilio import SANDBOX_ACCOUNT_SID

TO = "+15551234567"
ATTACKER_SID = "AC" + "e" * 32


def send_command() -> bytes:
    """A complete, well-formed `/twilio send` that would go straight to Twilio if it were believed."""
    return urlencode(
        {
            "team_id": TEAM_ID,
            "channel_id": GENERAL_ID,
            "user_id": ADMIN_ID,
            "command": "/twilio",
            "text": f"send {TO} you have been pwned",
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
            "response_url": "https://hooks.slack.com/commands/T0/1/abc",
        }
    ).encode()


def setup_submission() -> bytes:
    """A setup form submission that would store an attacker's Twilio account for the workspace."""
    values = {
        "label": {"value": {"type": "plain_text_input", "value": "evil"}},
        "account_sid": {"value": {"type": "plain_text_input", "value": ATTACKER_SID}},
        "auth_token": {"value": {"type": "plain_text_input", "value": "attacker-token-123456"}},
    }
    return interaction(
        {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": ADMIN_ID, "team_id": TEAM_ID},
            "trigger_id": "1.2.3",
            "view": {
                "id": "V0FORGED",
                "callback_id": "twilio_setup",
                "private_metadata": "",
                "blocks": [],
                "state": {"values": values},
            },
        }
    )


def headers_for(case: str, secret: str, body: bytes) -> tuple[dict[str, str], bytes]:
    """The signature headers (and body) of one kind of bad request."""
    now = int(time.time())
    good = signature(secret, now, body)
    if case == "missing":
        return {}, body
    if case == "only timestamp":
        return {"X-Slack-Request-Timestamp": str(now)}, body
    if case == "only signature":
        return {"X-Slack-Signature": good}, body
    if case == "forged":
        return {
            "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": signature("guess", now, body),
        }, body
    if case == "stale":
        then = now - 5 * 60 - 30
        return {
            "X-Slack-Request-Timestamp": str(then),
            "X-Slack-Signature": signature(secret, then, body),
        }, body
    if case == "from the future":
        later = now + 5 * 60 + 30
        return {
            "X-Slack-Request-Timestamp": str(later),
            "X-Slack-Signature": signature(secret, later, body),
        }, body
    if case == "body changed after signing":
        return {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": good}, body + b"&extra=1"
    if case == "timestamp changed after signing":
        return {"X-Slack-Request-Timestamp": str(now - 1), "X-Slack-Signature": good}, body
    garbled = {
        "garbled: not hex": "v0=" + "z" * 64,
        "garbled: wrong version": "v1=" + good[3:],
        "garbled: truncated": good[:-1],
        "garbled: empty": "",
        "garbled: unicode": "v0=" + "é" * 64,
    }
    if case in garbled:
        return {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": garbled[case]}, body
    stamps = {
        "garbled timestamp: empty": "",
        "garbled timestamp: words": "yesterday",
        "garbled timestamp: ²": "²",
    }
    return {"X-Slack-Request-Timestamp": stamps[case], "X-Slack-Signature": good}, body


CASES = [
    "missing",
    "only timestamp",
    "only signature",
    "forged",
    "stale",
    "from the future",
    "body changed after signing",
    "timestamp changed after signing",
    "garbled: not hex",
    "garbled: wrong version",
    "garbled: truncated",
    "garbled: empty",
    "garbled: unicode",
    "garbled timestamp: empty",
    "garbled timestamp: words",
    "garbled timestamp: ²",
]


@pytest.mark.parametrize("kind", ["slash command", "setup submission"])
@pytest.mark.parametrize("case", CASES)
async def test_a_badly_signed_request_gets_401_and_changes_nothing(
    stack: Stack, case: str, kind: str
) -> None:
    """401, no Twilio call, no Slack call, the database byte for byte as it was."""
    body = send_command() if kind == "slash command" else setup_submission()
    headers, sent = headers_for(case, stack.signing_secret, body)
    before = await db_snapshot(stack)
    calls = len(stack.slack.calls)
    status, text = await post(stack.bot_url, sent, secret=None, headers=headers)
    await stack.settle()
    assert status == 401
    assert "Traceback" not in text
    assert stack.twilio.requests == []
    assert len(stack.slack.calls) == calls
    assert await db_snapshot(stack) == before


async def test_a_signed_request_replayed_after_five_minutes_is_refused(stack: Stack) -> None:
    """A captured request, replayed with its original headers once they are stale, does nothing."""
    body = send_command()
    then = int(time.time()) - 301
    headers = {
        "X-Slack-Request-Timestamp": str(then),
        "X-Slack-Signature": signature(stack.signing_secret, then, body),
    }
    before = await db_snapshot(stack)
    status, _ = await post(stack.bot_url, body, secret=None, headers=headers)
    assert status == 401
    assert stack.twilio.requests == []
    assert await db_snapshot(stack) == before


async def test_the_same_body_correctly_signed_is_accepted(stack: Stack) -> None:
    """The control case: the very body the other tests send is acted on when the signature is right."""
    status, _ = await post(stack.bot_url, send_command(), secret=stack.signing_secret)
    await stack.settle()
    assert status == 200
    assert [r.account_sid for r in stack.twilio.creates()] == [SANDBOX_ACCOUNT_SID]


async def test_bolt_does_not_check_signatures_again_so_the_server_must(stack: Stack) -> None:
    """Bolt's own signature check is off (ours in slack_events already ran): forged still gets 401.

    If this ever fails because Bolt verifies again, the duplicate check is back (harmless, only slower);
    if a forged request gets past, the server-side check that Bolt's switch-off relies on is gone.
    """
    from slack_bolt.middleware.request_verification.async_request_verification import (
        AsyncRequestVerification,
    )

    bolt = stack.runtime.bolt
    assert not any(isinstance(m, AsyncRequestVerification) for m in bolt._async_middleware_list)
    headers = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
    status, _ = await post(stack.bot_url, send_command(), secret=None, headers=headers)
    await stack.settle()
    assert status == 401
    assert stack.twilio.requests == []

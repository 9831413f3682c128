"""Slack misbehaving: 429s and 5xx on chat.postMessage are retried, cards keep their order, and a channel
the bot is not in gets the card through the command's response_url."""

from __future__ import annotations

import pytest
from deliveries import outcomes
from harness import Stack, json_text

from bot.sandbox.slack import GENERAL_ID, PRIVATE_ID
from bot.sandbox.twilio import Fault
from bot.slack.delivery import INVITE_HINT

TO = "+15551234567"
# A short Twilio timeout and tiny backoff.
pytestmark = pytest.mark.stack(twilio_backoff_base=0.001, twilio_timeout=2.0)


def post_statuses(stack: Stack) -> list[int]:
    """What Slack answered each chat.postMessage the bot made (HTTP status)."""
    return [call.status for call in stack.slack.calls_to("chat.postMessage")]


async def test_a_429_on_chat_post_message_is_retried_after_retry_after(stack: Stack) -> None:
    """Slack rate-limits the card once: the bot waits Retry-After and posts it, once."""
    stack.slack.inject("chat.postMessage", status=429, retry_after=0)
    await stack.command(f"send {TO} rate limited card")
    assert post_statuses(stack) == [429, 200]
    [card] = stack.cards()
    assert "rate limited card" in json_text(card["blocks"])
    assert len(stack.twilio.creates()) == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_a_5xx_on_chat_post_message_is_retried(stack: Stack, status: int) -> None:
    """A Slack server error on the card is retried; the card appears once."""
    stack.slack.inject("chat.postMessage", status=status)
    await stack.command(f"send {TO} server error card")
    assert post_statuses(stack) == [status, 200]
    assert len(stack.cards()) == 1
    assert len(outcomes(stack)) == 1


async def test_cards_keep_the_order_of_their_commands(stack: Stack) -> None:
    """Three sends in a row, the first slow at Twilio and rate-limited at Slack: cards in command order."""
    stack.twilio.inject(Fault("latency", method="POST", path_contains="/Messages.json", seconds=0.3))
    stack.slack.inject("chat.postMessage", status=429, retry_after=0)
    for n in (1, 2, 3):
        # Each ack comes back before the next command is typed; the work runs in the background.
        resp = await stack.slack.slash_command(f"send {TO} card number {n}")
        assert resp.status == 200
    await stack.settle()
    texts = [json_text(card["blocks"]) for card in stack.cards()]
    assert len(texts) == 3
    order = [next(n for n in (1, 2, 3) if f"card number {n}" in text) for text in texts]
    assert order == [1, 2, 3]
    # Twilio stored the second and third first; their cards waited for the first one's.
    assert [m.body[-1] for m in stack.twilio.messages.values()] == ["2", "3", "1"]


async def test_a_channel_the_bot_is_not_in_gets_the_card_through_response_url(stack: Stack) -> None:
    """not_in_channel: the card goes through the command's response_url, with a hint to invite the bot."""
    await stack.command(f"send {TO} private channel card", channel_id=PRIVATE_ID)
    assert [c.response.get("error") for c in stack.slack.calls_to("chat.postMessage")] == ["not_in_channel"]
    [card] = stack.cards(PRIVATE_ID)
    text = json_text(card["blocks"])
    assert "private channel card" in text
    assert "/invite" in text and INVITE_HINT[:40] in text
    assert len(stack.twilio.creates()) == 1


async def test_not_in_channel_reported_for_a_public_channel_also_falls_back(stack: Stack) -> None:
    """Slack answering not_in_channel anywhere (the bot was removed) still gets the card to the channel."""
    stack.slack.inject("chat.postMessage", error="not_in_channel")
    await stack.command(f"send {TO} removed from general")
    [card] = stack.cards(GENERAL_ID)
    assert "removed from general" in json_text(card["blocks"])
    assert len(outcomes(stack)) == 1

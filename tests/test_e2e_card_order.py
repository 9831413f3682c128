"""A slow Twilio call holds nobody else's card: views never wait, and a create waits at most 2 seconds."""

from __future__ import annotations

import asyncio

from botproc import until
from harness import Stack, card_text

from bot.sandbox.slack import MEMBER_ID
from bot.sandbox.twilio import Fault

TO = "+15551234567"


async def test_a_list_shows_while_an_earlier_send_waits_for_twilio(stack: Stack) -> None:
    """A send whose Twilio call hangs, then someone's `/twilio list`: the list card comes first, at once."""
    stack.twilio.inject(Fault("apply_then_hold", method="POST", path_contains="/Messages.json"))
    await stack.slack.slash_command(f"send {TO} the slow one")
    await asyncio.wait_for(stack.twilio.wait_held(1), timeout=5)
    await stack.slack.slash_command("list", user_id=MEMBER_ID)
    # Well under the 2 s a create may wait for an earlier one: a view does not wait at all.
    await until(lambda: bool(stack.cards()), timeout=1.5, what="the list card")
    (listed,) = stack.cards()
    assert "Messages" in card_text(listed)
    assert stack.twilio.release_held() == 1
    await stack.settle()
    first, second = stack.cards()
    assert first["ts"] == listed["ts"]
    assert "the slow one" in card_text(second)


async def test_a_send_waits_at_most_two_seconds_for_an_earlier_slow_send(stack: Stack) -> None:
    """Two sends in one channel, the first stuck at Twilio: the second card goes out after the 2 s bound."""
    stack.twilio.inject(Fault("apply_then_hold", method="POST", path_contains="/Messages.json"))
    await stack.slack.slash_command(f"send {TO} stuck at twilio")
    await asyncio.wait_for(stack.twilio.wait_held(1), timeout=5)
    await stack.slack.slash_command(f"send {TO} right behind it", user_id=MEMBER_ID)
    await until(lambda: bool(stack.cards()), timeout=5, what="the second send's card")
    (behind,) = stack.cards()
    assert "right behind it" in card_text(behind)
    assert stack.twilio.release_held() == 1
    await stack.settle()
    assert ["right behind it" in card_text(c) for c in stack.cards()] == [True, False]


async def test_sends_typed_in_order_keep_their_order(stack: Stack) -> None:
    """Within the bound, cards of creates in one channel come out in the order the commands came in."""
    stack.twilio.inject(Fault("latency", method="POST", path_contains="/Messages.json", seconds=0.3))
    await stack.slack.slash_command(f"send {TO} first")
    await stack.slack.slash_command(f"send {TO} second", user_id=MEMBER_ID)
    await stack.settle()
    texts = [card_text(c) for c in stack.cards()]
    assert len(texts) == 2 and "first" in texts[0] and "second" in texts[1]

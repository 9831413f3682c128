"""First end-to-end checks: a signed slash command reaches Twilio and a card lands in the channel."""

from __future__ import annotations

from harness import Stack, json_text


async def test_send_posts_a_card_in_the_channel(stack: Stack) -> None:
    """`/twilio send` creates one message at Twilio and posts one card in #general."""
    resp = await stack.command("send +15551234567 hello from the tests")
    assert resp.status == 200
    assert len(stack.twilio.creates()) == 1
    cards = stack.cards()
    assert len(cards) == 1
    text = json_text(cards[0]["blocks"])
    assert "hello from the tests" in text
    assert "+15551234567" in text

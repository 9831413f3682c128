"""The "Working on it…" note a command leaves goes away once its card or its error is shown."""

from __future__ import annotations

from harness import Stack, card_text

from bot.sandbox.slack import PRIVATE_ID

TO = "+15551234567"


def _notes(stack: Stack) -> list[str]:
    return [t for t in stack.ephemeral_texts() if "Working on it" in t]


async def test_the_note_goes_once_the_card_is_in_the_channel(stack: Stack) -> None:
    """A send acks with the note, posts its card, then deletes the note through its response_url."""
    resp = await stack.slack.slash_command(f"send {TO} hello")
    assert "Working on it" in resp.body
    await stack.settle()
    assert "hello" in card_text(stack.last_card())
    assert _notes(stack) == []
    (deleted,) = [c for c in stack.slack.calls_to("response_url") if c.args.get("delete_original")]
    assert deleted.ok


async def test_the_note_goes_once_the_error_is_shown(stack: Stack) -> None:
    """A send Twilio refuses leaves the error for the user alone, and no note beside it."""
    await stack.command("send +15005550001 to a number Twilio calls invalid")
    (shown,) = stack.ephemeral_texts()
    assert "Twilio could not send that" in shown
    assert stack.cards() == []


async def test_the_note_goes_when_the_card_came_by_the_reply_link(stack: Stack) -> None:
    """In a channel the bot is not in, the card comes through the reply link, and the note still goes."""
    await stack.command(f"send {TO} private hello", channel_id=PRIVATE_ID)
    assert "private hello" in card_text(stack.cards(PRIVATE_ID)[-1])
    assert _notes(stack) == []

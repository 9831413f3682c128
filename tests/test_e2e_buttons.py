"""The buttons on result cards, clicked in Slack: Refresh, Cancel, Delete and Next page."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from harness import OTHER_ACCOUNT_SID, Stack, buttons, card_text

from bot.sandbox.slack import MEMBER_ID, OPS_ID, PRIVATE_ID

TO = "+15551234567"


def _sid(card: dict[str, Any]) -> str:
    found = re.search(r"\b(SM[0-9a-f]{32})\b", card_text(card))
    assert found, "the card shows no message SID"
    return found.group(1)


def _updates(stack: Stack) -> list[Any]:
    return [c for c in stack.slack.calls_to("chat.update") if c.ok]


async def test_refresh_updates_the_card_in_place_until_delivered(stack: Stack) -> None:
    """Refresh after the message went out turns the same card to delivered; no new card appears."""
    await stack.command(f"send {TO} track me")
    card = stack.last_card()
    assert "queued" in card_text(card)
    stack.twilio.clock.advance(timedelta(seconds=5))
    resp = await stack.click(card, "refresh_message", user_id=MEMBER_ID)
    assert resp.status == 200
    (update,) = _updates(stack)
    assert update.args["ts"] == card["ts"]
    (now,) = stack.cards()
    text = card_text(now)
    assert "delivered" in text and "queued" not in text
    assert f"<@{MEMBER_ID}> refreshed" in text
    assert _sid(now) == _sid(card)
    assert stack.slack.problems == []


async def test_cancel_on_a_scheduled_message_turns_the_card_canceled(stack: Stack) -> None:
    """Cancel on a scheduled card cancels it at Twilio and the card says canceled, without Cancel."""
    await stack.command(f"schedule {TO} in 2h maybe")
    card = stack.last_card()
    sid = _sid(card)
    await stack.click(card, "cancel_message")
    assert stack.twilio.message_json(sid)["status"] == "canceled"
    (now,) = stack.cards()
    assert now["ts"] == card["ts"]
    assert "Message canceled" in card_text(now)
    assert "cancel_message" not in buttons(now)


async def test_cancel_on_a_stale_copy_tells_the_user_it_is_too_late(stack: Stack) -> None:
    """Cancel on the log channel's copy after the message was canceled: 30409 in plain words, to the user."""
    await stack.command(f"log-channel <#{OPS_ID}|ops>")
    await stack.command(f"schedule {TO} in 2h maybe")
    await stack.click(stack.last_card(), "cancel_message")
    _, copy, canceled = stack.cards(OPS_ID)  # the log gets a notice, then a new card per operation
    assert "cancel_message" in buttons(copy) and "cancel_message" not in buttons(canceled)
    await stack.click(copy, "cancel_message", user_id=MEMBER_ID, channel_id=OPS_ID)
    (shown,) = [e for e in stack.slack.ephemerals if e.get("user") == MEMBER_ID]
    assert "still scheduled can be canceled" in card_text(shown)
    assert "30409" in card_text(shown)


async def test_delete_after_delivery_turns_the_card_deleted(stack: Stack) -> None:
    """Delete on a delivered message removes it at Twilio and the card says deleted."""
    await stack.command(f"send {TO} forget me")
    card = stack.last_card()
    sid = _sid(card)
    stack.twilio.clock.advance(timedelta(seconds=5))
    await stack.click(card, "delete_message")
    assert sid not in stack.twilio.messages
    (now,) = stack.cards()
    assert now["ts"] == card["ts"]
    text = card_text(now)
    assert "Message deleted" in text and sid in text
    assert buttons(now) == {}


async def test_delete_before_completion_explains_why_to_the_user(stack: Stack) -> None:
    """Delete while still queued gets Twilio's 20009 in plain words, to the clicker alone; the card stays."""
    await stack.command(f"send {TO} not yet")
    card = stack.last_card()
    await stack.click(card, "delete_message", user_id=MEMBER_ID)
    (shown,) = [e for e in stack.slack.ephemerals if e.get("user") == MEMBER_ID]
    text = card_text(shown)
    assert "finished sending" in text and "20009" in text
    assert "reopen_modal" not in buttons(shown)
    assert stack.last_card() == card
    assert _sid(card) in stack.twilio.messages


async def test_next_page_shows_the_next_page(stack: Stack) -> None:
    """`list --limit 2` over three messages shows two and a Next page button that shows the third."""
    for word in ("alpha", "bravo", "charlie"):
        await stack.command(f"send {TO} {word}")
    await stack.command("list --limit 2")
    listing = stack.last_card()
    first = card_text(listing)
    assert "charlie" in first and "bravo" in first and "alpha" not in first
    assert "list_next_page" in buttons(listing)
    await stack.click(listing, "list_next_page")
    page_two = stack.last_card()
    second = card_text(page_two)
    assert "alpha" in second and "charlie" not in second
    assert "list_next_page" not in buttons(page_two)
    assert stack.slack.problems == []


async def test_next_page_keeps_the_filters(stack: Stack) -> None:
    """The next page of `list --to N` still lists only N, and says so."""
    for word in ("alpha", "bravo", "charlie"):
        await stack.command(f"send {TO} {word}")
    await stack.command("send +15559876543 elsewhere")
    await stack.command(f"list --to {TO} --limit 2")
    listing = stack.last_card()
    assert f"Filters: to {TO}" in card_text(listing)
    await stack.click(listing, "list_next_page")
    text = card_text(stack.last_card())
    assert "alpha" in text and "elsewhere" not in text
    assert f"Filters: to {TO}" in text


async def test_buttons_work_on_a_card_that_came_by_reply_link(stack: Stack) -> None:
    """In a channel the bot is not in, Cancel still cancels and turns that card canceled."""
    await stack.command(f"schedule {TO} in 2h private plans", channel_id=PRIVATE_ID)
    card = stack.last_card(PRIVATE_ID)
    sid = _sid(card)
    await stack.click(card, "cancel_message", channel_id=PRIVATE_ID)
    assert stack.twilio.message_json(sid)["status"] == "canceled"
    (now,) = stack.cards(PRIVATE_ID)
    assert "Message canceled" in card_text(now)
    assert "cancel_message" not in buttons(now)
    assert not [e for e in stack.slack.ephemerals if "went wrong" in str(e.get("text"))]


async def test_next_page_after_the_account_was_replaced_says_to_list_again(stack: Stack) -> None:
    """A Next page link into the account `main` used to be asks for a new list instead of failing."""
    for word in ("alpha", "bravo", "charlie"):
        await stack.command(f"send {TO} {word}")
    await stack.command("list --limit 2")
    listing = stack.last_card()
    await stack.add_account(label="main", sid=OTHER_ACCOUNT_SID, token=stack.other_token)
    before = len(stack.twilio.requests)
    await stack.click(listing, "list_next_page")
    assert stack.twilio.requests[before:] == []
    (shown,) = stack.slack.ephemerals[-1:]
    assert "run `/twilio list` again" in card_text(shown)
    assert stack.last_card() == listing


async def test_buttons_carry_no_secret(stack: Stack) -> None:
    """Button values name the message and the account label only."""
    await stack.command(f"schedule {TO} in 2h secretless")
    for element in buttons(stack.last_card()).values():
        assert stack.twilio_token not in element["value"]
        assert set(json.loads(element["value"])) == {"sid", "account"}

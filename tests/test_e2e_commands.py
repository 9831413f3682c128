"""Every `/twilio` subcommand typed in Slack, over real HTTP: what lands in the channel, what Twilio got."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import Stack, buttons, card_text, initial_values, json_text

from bot.core.commands import USAGE
from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, MEMBER_ID, OPS_ID, PRIVATE_ID
from bot.sandbox.twilio import DEFAULT_FROM, DEFAULT_SERVICE_SID, SANDBOX_ACCOUNT_SID

TO = "+15551234567"
OTHER_TO = "+15559876543"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # the stack's simulated clock
StackFactory = Callable[..., Awaitable[Stack]]


def _sid(card: dict[str, Any]) -> str:
    found = re.search(r"\b(SM[0-9a-f]{32})\b", card_text(card))
    assert found, "the card shows no message SID"
    return found.group(1)


def _date_token(moment: datetime) -> str:
    return f"<!date^{int(moment.timestamp())}^"


# ── help ─────────────────────────────────────────────────────────────────────────────────────────────


async def test_help_lists_every_subcommand_to_the_user_alone(stack: Stack) -> None:
    """`/twilio help` shows every usage line to the user only, and calls nobody."""
    await stack.command("help")
    (shown,) = stack.ephemeral_texts()
    for line in USAGE.values():
        assert line.replace("<", "&lt;").replace(">", "&gt;") in shown
    assert stack.cards() == []
    assert stack.twilio.requests == []


async def test_unknown_subcommand_says_so_and_shows_help(stack: Stack) -> None:
    """An unknown word gets a sentence naming it, then the help."""
    await stack.command("frobnicate +15551234567")
    (shown,) = stack.ephemeral_texts()
    assert "There is no `/twilio frobnicate` command" in shown
    assert USAGE["send"] in shown
    assert stack.twilio.requests == []


# ── setup and accounts ───────────────────────────────────────────────────────────────────────────────


async def test_setup_opens_the_account_form_for_an_admin(stack: Stack) -> None:
    """An admin's `/twilio setup` opens the account form."""
    await stack.command("setup")
    view = stack.opened_view()
    assert view["callback_id"] == "twilio_setup"
    assert {"label", "account_sid", "auth_token"} <= set(initial_values(view))


async def test_the_form_opens_when_slack_fails_views_open_once(stack: Stack) -> None:
    """A 500 from views.open is retried after the ack; `settle` waits for it, so the form is there."""
    stack.slack.inject("views.open", status=500)
    await stack.command("send")
    assert [c.ok for c in stack.slack.calls_to("views.open")] == [False, True]
    assert stack.opened_view()["callback_id"] == "twilio_send"


async def test_setup_is_refused_to_a_member(stack: Stack) -> None:
    """A member's `/twilio setup` is refused in words, and no form opens."""
    await stack.command("setup", user_id=MEMBER_ID)
    (shown,) = stack.ephemeral_texts(MEMBER_ID)
    assert "Only workspace admins" in shown
    assert stack.slack.calls_to("views.open") == []


async def test_accounts_shows_masked_sids_and_never_a_token(stack: Stack) -> None:
    """`/twilio accounts` names the account with its SID masked; the token appears nowhere in Slack."""
    await stack.command("accounts")
    (shown,) = stack.ephemeral_texts()
    assert "main" in shown
    assert f"{SANDBOX_ACCOUNT_SID[:4]}…{SANDBOX_ACCOUNT_SID[-4:]}" in shown
    assert SANDBOX_ACCOUNT_SID not in shown
    everything = repr(stack.slack.calls) + repr(stack.slack.ephemerals)
    assert stack.twilio_token not in everything


# ── send and schedule ────────────────────────────────────────────────────────────────────────────────


async def test_send_posts_a_full_card_in_the_channel(stack: Stack) -> None:
    """The send card shows who asked, To, From, status, SID, segments, time, body and its buttons."""
    resp = await stack.command(f"send {TO} hello there")
    assert resp.status == 200
    (create,) = stack.twilio.creates()
    assert dict(create.form) == {"To": TO, "From": DEFAULT_FROM, "Body": "hello there"}
    card = stack.last_card()
    text = card_text(card)
    assert card["blocks"][0]["type"] == "header"
    assert "Message sent" in text
    assert f"<@{ADMIN_ID}>" in text
    assert TO in text and DEFAULT_FROM in text
    assert "queued" in text
    assert _sid(card) == create.message_sid
    assert "*Segments*\n1" in text
    assert _date_token(NOW) in text
    assert "hello there" in text
    found = buttons(card)
    assert set(found) == {"refresh_message", "delete_message"}
    assert found["delete_message"].get("confirm"), "Delete must ask for confirmation"
    assert [c for c in stack.slack.calls_to("chat.postMessage") if c.ok]
    assert stack.slack.problems == []


async def test_schedule_in_two_hours_shows_the_time_and_a_cancel_button(stack: Stack) -> None:
    """`schedule TO in 2h BODY` goes through the Messaging Service at now+2h; the card can cancel it."""
    await stack.command(f"schedule {TO} in 2h see you soon")
    (create,) = stack.twilio.creates()
    form = dict(create.form)
    assert form["MessagingServiceSid"] == DEFAULT_SERVICE_SID
    assert form["ScheduleType"] == "fixed"
    assert form["SendAt"] == "2026-11-26T14:00:00Z"
    card = stack.last_card()
    text = card_text(card)
    assert "Message scheduled" in text
    assert "scheduled" in text
    assert _date_token(NOW + timedelta(hours=2)) in text
    assert DEFAULT_SERVICE_SID in text
    assert {"refresh_message", "cancel_message", "delete_message"} == set(buttons(card))
    assert buttons(card)["cancel_message"].get("confirm")


async def test_schedule_at_an_iso_time(stack: Stack) -> None:
    """`schedule TO 2026-11-28T09:30:00Z BODY` sends exactly that SendAt."""
    await stack.command(f"schedule {TO} 2026-11-28T09:30:00Z standup reminder")
    (create,) = stack.twilio.creates()
    assert dict(create.form)["SendAt"] == "2026-11-28T09:30:00Z"
    assert _date_token(datetime(2026, 11, 28, 9, 30, tzinfo=UTC)) in card_text(stack.last_card())


# ── list ─────────────────────────────────────────────────────────────────────────────────────────────


async def test_list_with_filters_shows_only_matching_messages(stack: Stack) -> None:
    """`list --to N --limit 5` asks Twilio for that number and shows only its messages."""
    await stack.command(f"send {TO} first")
    await stack.command(f"send {OTHER_TO} second")
    stack.twilio.clock.advance(timedelta(seconds=5))
    await stack.command(f"list --to {TO} --from {DEFAULT_FROM} --date 2026-11-26 --limit 5")
    listing = stack.twilio.requests[-1]
    assert listing.method == "GET"
    query = dict(listing.query)
    assert query["DateSent"].startswith("2026-11-26")
    assert {k: query[k] for k in ("To", "From", "PageSize")} == {
        "To": TO,
        "From": DEFAULT_FROM,
        "PageSize": "5",
    }
    text = card_text(stack.last_card())
    assert "first" in text and "second" not in text
    assert "1 message on this page" in text


async def test_list_scheduled_shows_only_messages_not_yet_sent(stack: Stack) -> None:
    """`list scheduled` leaves out messages already sent."""
    await stack.command(f"send {TO} already gone")
    await stack.command(f"schedule {TO} in 3d later please")
    await stack.command("list scheduled")
    card = stack.last_card()
    text = card_text(card)
    assert "Scheduled messages" in text
    assert "later please" in text and "already gone" not in text


# ── fetch, cancel, delete ────────────────────────────────────────────────────────────────────────────


async def test_fetch_shows_delivery_price_and_sent_time(stack: Stack) -> None:
    """`fetch SID` after delivery shows delivered, the price and when it was sent."""
    await stack.command(f"send {TO} priced")
    sid = _sid(stack.last_card())
    stack.twilio.clock.advance(timedelta(seconds=5))
    await stack.command(f"fetch {sid}")
    text = card_text(stack.last_card())
    assert "delivered" in text
    assert "*Price*\n-0.0075 USD" in text
    assert "*Sent*" in text and _date_token(NOW + timedelta(seconds=1)) in text
    assert "delete_message" in buttons(stack.last_card())
    assert "cancel_message" not in buttons(stack.last_card())


async def test_cancel_by_command_posts_a_canceled_card(stack: Stack) -> None:
    """`cancel SID` on a scheduled message: Twilio cancels it and the card says so."""
    await stack.command(f"schedule {TO} in 2h maybe not")
    sid = _sid(stack.last_card())
    await stack.command(f"cancel {sid}")
    card = stack.last_card()
    assert "Message canceled" in card_text(card)
    assert "canceled" in stack.twilio.message_json(sid)["status"]
    assert "cancel_message" not in buttons(card)


async def test_delete_by_command_after_delivery(stack: Stack) -> None:
    """`delete SID` once delivered removes the message and posts a deleted card."""
    await stack.command(f"send {TO} short lived")
    sid = _sid(stack.last_card())
    stack.twilio.clock.advance(timedelta(seconds=5))
    await stack.command(f"delete {sid}")
    assert "Message deleted" in card_text(stack.last_card())
    assert sid not in stack.twilio.messages


# ── history and log-channel ──────────────────────────────────────────────────────────────────────────


async def test_history_shows_recent_operations(stack: Stack) -> None:
    """`history 5` shows the send just made, to the user alone."""
    await stack.command(f"send {TO} remember me")
    sid = _sid(stack.last_card())
    await stack.command("history 5")
    shown = stack.ephemeral_texts()[-1]
    assert "Recent Twilio activity" in shown
    assert "*send*" in shown and sid in shown


async def test_history_shows_only_the_last_n(stack: Stack) -> None:
    """`history 1` after two sends shows only the newest."""
    await stack.command(f"send {TO} older")
    older = _sid(stack.last_card())
    await stack.command(f"send {TO} newer")
    newer = _sid(stack.last_card())
    await stack.command("history 1")
    shown = stack.ephemeral_texts()[-1]
    assert newer in shown and older not in shown


async def test_log_channel_mirrors_every_card(stack: Stack) -> None:
    """After an admin sets #ops as log channel, a send's card lands in #general and in #ops."""
    await stack.command(f"log-channel <#{OPS_ID}|ops>")
    assert f"<#{OPS_ID}>" in stack.ephemeral_texts()[-1]
    await stack.command(f"send {TO} mirrored")
    await stack.command(f"schedule {TO} in 2h also mirrored")
    _notice, *copies = stack.cards(OPS_ID)
    assert [_sid(c) for c in stack.cards(GENERAL_ID)] == [_sid(c) for c in copies]
    assert len(copies) == 2


async def test_log_channel_says_hello_there(stack: Stack) -> None:
    """Setting the log channel posts a notice in it, naming who set it."""
    await stack.command(f"log-channel <#{OPS_ID}|ops>")
    (notice,) = stack.cards(OPS_ID)
    assert f"<@{ADMIN_ID}> made this channel the Twilio log" in card_text(notice)


async def test_a_log_channel_the_bot_cannot_post_in_is_reported_at_once(stack: Stack) -> None:
    """A private log channel without the bot: the admin is told to invite it, not left guessing."""
    await stack.command(f"log-channel <#{PRIVATE_ID}|private-team>")
    shown = stack.ephemeral_texts()[-1]
    assert "cannot post in that channel" in shown and "/invite" in shown


async def test_log_channel_is_refused_to_a_member(stack: Stack) -> None:
    """A member cannot set the log channel; nothing is mirrored afterwards."""
    await stack.command(f"log-channel <#{OPS_ID}|ops>", user_id=MEMBER_ID)
    assert "Only workspace admins" in stack.ephemeral_texts(MEMBER_ID)[-1]
    await stack.command(f"send {TO} not mirrored", user_id=MEMBER_ID)
    assert stack.cards(OPS_ID) == []


# ── invalid and incomplete input ─────────────────────────────────────────────────────────────────────


async def _refused(stack: Stack, text: str, *, says: str, usage: str) -> None:
    await stack.command(text)
    shown = stack.ephemeral_texts()[-1]
    assert says in shown, shown
    assert f"Usage: `{USAGE[usage]}`" in shown
    assert stack.twilio.requests == []
    assert stack.cards() == []
    assert stack.slack.calls_to("views.open") == []


async def test_a_bad_number_is_refused_with_usage_and_no_twilio_call(stack: Stack) -> None:
    """`send 12 hi`: the user alone hears what is wrong and the usage line; Twilio hears nothing."""
    await _refused(stack, "send 12 hi", says="12", usage="send")


async def test_a_bad_sid_is_refused_with_usage_and_no_twilio_call(stack: Stack) -> None:
    """`fetch SMnope` is refused before any Twilio call."""
    await _refused(stack, "fetch SMnope", says="SID", usage="fetch")


async def test_a_body_too_long_is_refused_with_usage_and_no_twilio_call(stack: Stack) -> None:
    """A body over 1600 characters is refused before any Twilio call."""
    await _refused(stack, f"send {TO} " + "x" * 1601, says="limit of 1,600", usage="send")


async def test_a_send_time_outside_the_window_is_refused(stack: Stack) -> None:
    """`schedule TO in 5m …` is too soon for Twilio, and the bot says so first."""
    await _refused(stack, f"schedule {TO} in 5m too soon", says="15 minutes", usage="schedule")


async def test_a_page_size_over_1000_is_refused(stack: Stack) -> None:
    """`list --limit 5000` is refused before any Twilio call."""
    await _refused(stack, "list --limit 5000", says="1000", usage="list")


async def test_an_error_quoting_the_input_pings_nobody(stack: Stack) -> None:
    """`send <!channel> hi` is refused with the input quoted back escaped, so it mentions nobody."""
    await stack.command("send <!channel> hi")
    await stack.command(f"history <@{MEMBER_ID}>")
    for shown in stack.ephemeral_texts():
        assert "&lt;" in shown and "<!channel>" not in shown and f"<@{MEMBER_ID}>" not in shown
    assert stack.twilio.requests == []


async def test_send_with_media_links_asks_twilio_for_an_mms(stack: Stack) -> None:
    """Each --media becomes a MediaUrl of the create, in the order given."""
    await stack.command(f"send {TO} photos --media https://a.example/1.jpg --media https://a.example/2.jpg")
    (create,) = stack.twilio.creates()
    assert [v for k, v in create.form if k == "MediaUrl"] == [
        "https://a.example/1.jpg",
        "https://a.example/2.jpg",
    ]
    assert dict(create.form)["Body"] == "photos"


async def test_send_without_a_body_opens_the_form_prefilled(stack: Stack) -> None:
    """`send TO --from F` opens the send form with To and From filled in."""
    await stack.command(f"send {TO} --from {DEFAULT_FROM}")
    view = stack.opened_view()
    assert view["callback_id"] == "twilio_send"
    values = initial_values(view)
    assert values["to"] == TO and values["from"] == DEFAULT_FROM and values["body"] is None
    assert stack.twilio.requests == []


async def test_a_bad_value_in_an_incomplete_command_is_shown_on_the_form(stack: Stack) -> None:
    """`send 12` opens the send form with 12 filled in and a warning about it on top."""
    await stack.command("send 12")
    view = stack.opened_view()
    assert initial_values(view)["to"] == "12"
    assert "⚠️" in json_text(view["blocks"]) and "12" in json_text(view["blocks"][:1])
    assert stack.twilio.requests == []


async def test_schedule_without_a_body_opens_the_form_with_the_time(stack: Stack) -> None:
    """`schedule TO in 2h` opens the schedule form with To and the picked time."""
    await stack.command(f"schedule {TO} in 2h")
    values = initial_values(stack.opened_view())
    assert values["to"] == TO
    assert values["send_at"] == int((NOW + timedelta(hours=2)).timestamp())
    assert values["service"] == DEFAULT_SERVICE_SID


async def test_fetch_without_a_sid_opens_the_form_with_the_account(make_stack: StackFactory) -> None:
    """`fetch --account second` opens the fetch form with that account chosen."""
    stack = await make_stack()
    await stack.add_account(label="second")
    await stack.command("fetch --account second")
    view = stack.opened_view()
    assert view["callback_id"] == "twilio_fetch"
    assert initial_values(view) == {"account": "second", "sid": None}


async def test_without_an_account_an_admin_is_told_to_run_setup(make_stack: StackFactory) -> None:
    """In a workspace with no account, an admin's send is answered with `/twilio setup`."""
    stack = await make_stack(with_account=False)
    await stack.command(f"send {TO} hello")
    assert "/twilio setup" in stack.ephemeral_texts()[-1]
    assert stack.twilio.requests == []
    assert stack.cards() == []


async def test_without_an_account_a_member_is_told_to_ask_an_admin(make_stack: StackFactory) -> None:
    """In a workspace with no account, a member's list is answered with "ask an admin"."""
    stack = await make_stack(with_account=False)
    await stack.command("list", user_id=MEMBER_ID)
    shown = stack.ephemeral_texts(MEMBER_ID)[-1]
    assert "admin" in shown
    assert stack.twilio.requests == []


# ── escaping ─────────────────────────────────────────────────────────────────────────────────────────


async def test_an_sms_body_with_mentions_pings_nobody(stack: Stack) -> None:
    """A body of `<!channel>` and `<@U0ADMIN>` reaches Twilio as typed and shows escaped in the card."""
    await stack.command(f"send {TO} <!channel> and <@{ADMIN_ID}> & co")
    (create,) = stack.twilio.creates()
    assert dict(create.form)["Body"] == f"<!channel> and <@{ADMIN_ID}> & co"
    card = stack.last_card()
    everything = card["text"] + json_text(card["blocks"])
    assert "&lt;!channel&gt; and &lt;@U0ADMIN&gt; &amp; co" in everything
    assert "<!channel>" not in everything
    assert everything.count(f"<@{ADMIN_ID}>") == 1  # the requester line only
    assert stack.slack.problems == []


@pytest.mark.parametrize("sub", ["send", "schedule", "list", "fetch", "cancel", "delete"])
async def test_help_buttons_open_each_commands_form(stack: Stack, sub: str) -> None:
    """The help card's buttons open every Twilio command's form, `list` included (it has no required part)."""
    await stack.command("help")
    help_message = stack.slack.ephemerals[-1]
    await stack.click(help_message, f"reopen_modal:{sub}")
    view = stack.opened_view()
    assert view["callback_id"] == f"twilio_{sub}"
    assert stack.twilio.requests == []


async def test_a_form_slack_refuses_to_open_is_explained(stack: Stack) -> None:
    """When views.open fails (an expired trigger), the user reads why and what to do; the ack was fine."""
    stack.slack.inject("views.open", error="expired_trigger_id")
    resp = await stack.command("send")
    assert resp.status == 200
    assert any("did not open" in text for text in stack.ephemeral_texts())
    assert stack.twilio.requests == []


async def test_log_channel_gets_operations_not_refresh_clicks(stack: Stack) -> None:
    """Refresh updates the card in place and adds nothing to the log channel; Cancel is mirrored."""
    await stack.command(f"log-channel <#{OPS_ID}|ops>")
    await stack.command(f"schedule {TO} in 2h to be canceled")
    before = len(stack.cards(OPS_ID))
    card = stack.last_card(GENERAL_ID)
    await stack.click(card, "refresh_message")
    assert len(stack.cards(OPS_ID)) == before
    await stack.click(stack.last_card(GENERAL_ID), "cancel_message")
    assert len(stack.cards(OPS_ID)) == before + 1
    assert "canceled" in json_text(stack.cards(OPS_ID)[-1]["blocks"]).lower()

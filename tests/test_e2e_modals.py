"""Modal forms end to end: opened by a command, filled in, submitted; errors stay on the form."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import OTHER_ACCOUNT_SID, Stack, buttons, card_text, initial_values

from bot.sandbox.slack import ADMIN_ID, MEMBER_ID
from bot.sandbox.twilio import DEFAULT_FROM, DEFAULT_SERVICE_SID, SANDBOX_ACCOUNT_SID, Fault

TO = "+15551234567"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # the stack's simulated clock
StackFactory = Callable[..., Awaitable[Stack]]


async def _form(stack: Stack, text: str, *, user_id: str = ADMIN_ID) -> dict[str, Any]:
    await stack.command(text, user_id=user_id)
    return stack.opened_view()


def _sid(card: dict[str, Any]) -> str:
    found = re.search(r"\b(SM[0-9a-f]{32})\b", card_text(card))
    assert found, "the card shows no message SID"
    return found.group(1)


def _errors(stack: Stack, view_id: str) -> dict[str, str]:
    return stack.slack.view_errors.get(view_id, {})


# ── valid submissions ────────────────────────────────────────────────────────────────────────────────


async def test_send_form_sends_and_posts_the_card(stack: Stack) -> None:
    """`/twilio send` opens the form; submitting it closes the form and posts the card in the channel."""
    view = await _form(stack, "send")
    assert initial_values(view)["from"] == DEFAULT_FROM
    resp = await stack.submit(view["id"], {"to": TO, "body": "from the form"})
    assert resp.status == 200 and resp.body == ""
    assert view["id"] not in stack.slack.views
    (create,) = stack.twilio.creates()
    assert dict(create.form) == {"To": TO, "From": DEFAULT_FROM, "Body": "from the form"}
    text = card_text(stack.last_card())
    assert "Message sent" in text and "from the form" in text and f"<@{ADMIN_ID}>" in text


async def test_schedule_form_schedules_at_the_picked_time(stack: Stack) -> None:
    """The schedule form sends SendAt from the picker and the account's Messaging Service."""
    view = await _form(stack, f"schedule {TO}")
    when = NOW + timedelta(days=2)
    await stack.submit(view["id"], {"body": "picked", "send_at": int(when.timestamp())})
    (create,) = stack.twilio.creates()
    form = dict(create.form)
    assert form["SendAt"] == "2026-11-28T12:00:00Z"
    assert form["MessagingServiceSid"] == DEFAULT_SERVICE_SID
    assert "cancel_message" in buttons(stack.last_card())


async def test_list_form_filters_by_number(stack: Stack) -> None:
    """The list form (reopened after a Twilio error, prefilled) filters by To."""
    await stack.command(f"send {TO} listed")
    await stack.command("send +15559876543 not listed")
    # `list` needs no arguments, so its form opens from "Edit and try again" after a Twilio error.
    stack.twilio.inject(Fault(kind="status", status=400, method="GET", path_contains="Messages.json"))
    await stack.command(f"list --to {TO}")
    (error,) = [e for e in stack.slack.ephemerals if "reopen_modal" in str(e.get("blocks"))]
    await stack.click(error, "reopen_modal")
    view = stack.opened_view()
    assert view["callback_id"] == "twilio_list"
    assert initial_values(view)["to"] == TO
    await stack.submit(view["id"], {"limit": "10"})
    text = card_text(stack.last_card())
    assert "listed" in text and "not listed" not in text


async def test_fetch_form_posts_the_message_card(stack: Stack) -> None:
    """`/twilio fetch` opens the form; a valid SID posts the message card."""
    await stack.command(f"send {TO} look me up")
    sid = _sid(stack.last_card())
    view = await _form(stack, "fetch")
    await stack.submit(view["id"], {"sid": sid})
    assert _sid(stack.last_card()) == sid
    assert len(stack.cards()) == 2


async def test_cancel_form_cancels_a_scheduled_message(stack: Stack) -> None:
    """`/twilio cancel` opens the form; submitting a scheduled SID cancels it."""
    await stack.command(f"schedule {TO} in 2h cancel me")
    sid = _sid(stack.last_card())
    view = await _form(stack, "cancel")
    await stack.submit(view["id"], {"sid": sid})
    assert "Message canceled" in card_text(stack.last_card())
    assert stack.twilio.message_json(sid)["status"] == "canceled"


async def test_delete_form_deletes_a_delivered_message(stack: Stack) -> None:
    """`/twilio delete` opens the form; submitting a delivered SID deletes it."""
    await stack.command(f"send {TO} delete me")
    sid = _sid(stack.last_card())
    stack.twilio.clock.advance(timedelta(seconds=5))
    view = await _form(stack, "delete")
    await stack.submit(view["id"], {"sid": sid})
    assert "Message deleted" in card_text(stack.last_card())
    assert sid not in stack.twilio.messages


async def test_setup_form_with_right_credentials_stores_a_verified_account(stack: Stack) -> None:
    """Setup with the right token checks it with Twilio, stores the account and confirms it."""
    view = await _form(stack, "setup")
    await stack.submit(
        view["id"],
        {
            "label": "backup",
            "account_sid": SANDBOX_ACCOUNT_SID,
            "auth_token": stack.twilio_token,
            "default_from": DEFAULT_FROM,
        },
    )
    assert view["id"] not in stack.slack.views
    check = stack.twilio.requests[-1]
    assert (check.method, check.path) == ("GET", f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}.json")
    labels = [a.label for a in await stack.runtime.stores.accounts.list("T0PLAYGRND")]
    assert sorted(labels) == ["backup", "main"]
    assert "backup" in stack.ephemeral_texts()[-1]
    assert stack.twilio_token not in repr(stack.slack.calls) + repr(stack.slack.ephemerals)


async def test_setup_form_with_an_api_key_keeps_the_auth_token_for_webhooks(make_stack: StackFactory) -> None:
    """An API key with the Auth Token beside it: calls use the key, webhooks are checked with the token."""
    stack = await make_stack(with_account=False)
    key_sid, key_secret = "SK" + "7" * 32, "key-secret-0123456789abcdef"
    stack.twilio.add_sandbox_account(stack.twilio_token)
    stack.twilio.add_account(
        SANDBOX_ACCOUNT_SID, stack.twilio_token, api_keys={key_sid: key_secret}, numbers=(DEFAULT_FROM,)
    )
    view = await _form(stack, "setup")
    await stack.submit(
        view["id"],
        {
            "account_sid": SANDBOX_ACCOUNT_SID,
            "auth_token": stack.twilio_token,
            "api_key_sid": key_sid,
            "api_secret": key_secret,
        },
    )
    assert view["id"] not in stack.slack.views
    (account,) = await stack.runtime.stores.accounts.list("T0PLAYGRND")
    assert account.api_key_sid == key_sid
    tokens = await stack.runtime.stores.accounts.webhook_tokens(SANDBOX_ACCOUNT_SID)
    assert tokens.tokens == (stack.twilio_token,)
    assert stack.twilio_token not in repr(stack.slack.calls)


async def test_setup_form_with_a_wrong_token_stores_nothing(make_stack: StackFactory) -> None:
    """A wrong token is reported on the token field; no account is stored."""
    stack = await make_stack(with_account=False)
    view = await _form(stack, "setup")
    resp = await stack.submit(
        view["id"], {"account_sid": SANDBOX_ACCOUNT_SID, "auth_token": "wrong-token-0123456789abcdef"}
    )
    assert resp.json()["response_action"] == "errors"
    assert "credentials" in _errors(stack, view["id"])["auth_token"]
    assert await stack.runtime.stores.accounts.list("T0PLAYGRND") == []
    assert stack.slack.problems == []


async def test_setup_form_is_refused_to_a_member_who_kept_it_open(stack: Stack) -> None:
    """A setup form submitted by a non-admin stores nothing."""
    view = await _form(stack, "setup")
    await stack.submit(
        view["id"],
        {"label": "sneaky", "account_sid": SANDBOX_ACCOUNT_SID, "auth_token": stack.twilio_token},
        user_id=MEMBER_ID,
    )
    assert "admins" in _errors(stack, view["id"])["label"]
    assert [a.label for a in await stack.runtime.stores.accounts.list("T0PLAYGRND")] == ["main"]


# ── invalid fields, then the same view corrected ─────────────────────────────────────────────────────


async def _rejected_then_fixed(
    stack: Stack, text: str, bad: dict[str, Any], field: str, says: str, good: dict[str, Any]
) -> None:
    view = await _form(stack, text)
    resp = await stack.submit(view["id"], bad, validate=False)
    answer = resp.json()
    assert answer["response_action"] == "errors"
    assert says in answer["errors"][field], answer["errors"]
    assert stack.twilio.requests == []
    assert stack.slack.problems == []  # every key is an input block_id
    assert view["id"] in stack.slack.views
    await stack.submit(view["id"], {**bad, **good})  # the user fixes one field and submits again
    assert view["id"] not in stack.slack.views
    assert len(stack.twilio.creates()) == 1
    assert len(stack.cards()) == 1


SOON = int((NOW + timedelta(minutes=5)).timestamp())  # inside the 15 minutes Twilio needs
LATER = int((NOW + timedelta(hours=2)).timestamp())


@pytest.mark.parametrize(
    ("text", "bad", "field", "says", "good"),
    [
        pytest.param("send", {"to": "12", "body": "hi"}, "to", "12", {"to": TO, "body": "hi"}, id="to"),
        pytest.param(
            "send", {"to": TO, "body": "x" * 1601}, "body", "1,600", {"body": "short now"}, id="body"
        ),
        pytest.param(
            f"schedule {TO}",
            {"body": "hi", "send_at": SOON},
            "send_at",
            "15 minutes",
            {"body": "hi", "send_at": LATER},
            id="send_at",
        ),
    ],
)
async def test_a_bad_value_is_an_error_on_its_field(
    stack: Stack, text: str, bad: dict[str, Any], field: str, says: str, good: dict[str, Any]
) -> None:
    """A bad To, a too long body, a too early send-at: refused on their own field; fixed, it runs once."""
    await _rejected_then_fixed(stack, text, bad, field, says, good)


async def test_media_links_in_the_send_form_go_out_as_an_mms(stack: Stack) -> None:
    """A link that is not http(s) is an error on the Media field; fixed, each line is a MediaUrl."""
    links = "https://a.example/1.jpg\nhttps://a.example/2.jpg"
    await _rejected_then_fixed(
        stack, "send", {"to": TO, "body": "pics", "media": "photo.jpg"}, "media", "not a media link",
        {"media": links},
    )  # fmt: skip
    (create,) = stack.twilio.creates()
    assert [v for k, v in create.form if k == "MediaUrl"] == links.split("\n")


async def test_scheduling_without_a_messaging_service_is_an_error_on_service(
    make_stack: StackFactory,
) -> None:
    """With no default Messaging Service, the schedule form asks for one; given it, it schedules once."""
    stack = await make_stack(with_account=False)
    await stack.add_account(default_service_sid=None)
    await _rejected_then_fixed(
        stack,
        f"schedule {TO}",
        {"body": "hi", "send_at": LATER},
        "service",
        "Messaging Service",
        {"service": DEFAULT_SERVICE_SID},
    )


async def test_a_bad_sid_is_an_error_on_the_sid_field(stack: Stack) -> None:
    """A malformed SID is refused on the fetch form; Twilio hears nothing."""
    view = await _form(stack, "fetch")
    resp = await stack.submit(view["id"], {"sid": "SMnope"})
    assert "SID" in resp.json()["errors"]["sid"]
    assert stack.twilio.requests == []
    assert stack.slack.problems == []


# ── Twilio says no after the form closed ─────────────────────────────────────────────────────────────


async def test_a_twilio_error_after_submit_offers_the_form_again_prefilled(stack: Stack) -> None:
    """21610 (unsubscribed) reaches the user in plain words with a button reopening their form."""
    view = await _form(stack, "send")
    await stack.submit(view["id"], {"to": "+15005550004", "body": "are you there?"})
    assert stack.cards() == []
    (error,) = [e for e in stack.slack.ephemerals if e.get("user") == ADMIN_ID and e.get("blocks")]
    text = card_text(error)
    assert "unsubscribed" in text and "21610" in text
    await stack.click(error, "reopen_modal")
    again = stack.opened_view()
    assert again["callback_id"] == "twilio_send"
    values = initial_values(again)
    assert values["to"] == "+15005550004" and values["body"] == "are you there?"


async def test_a_failed_schedule_reopens_with_time_and_service(stack: Stack) -> None:
    """A schedule Twilio refuses reopens with To, body, the same time and the service filled in."""
    when = int((NOW + timedelta(hours=3)).timestamp())
    view = await _form(stack, "schedule")
    await stack.submit(view["id"], {"to": "+15005550004", "body": "later", "send_at": when})
    (error,) = [e for e in stack.slack.ephemerals if e.get("user") == ADMIN_ID and e.get("blocks")]
    assert "unsubscribed" in card_text(error)
    await stack.click(error, "reopen_modal")
    again = stack.opened_view()
    assert again["callback_id"] == "twilio_schedule"
    values = initial_values(again)
    assert values["to"] == "+15005550004" and values["body"] == "later"
    assert values["send_at"] == when and values["service"] == DEFAULT_SERVICE_SID
    await stack.submit(again["id"], {"to": TO})
    assert len(stack.twilio.creates()) == 1
    assert dict(stack.twilio.creates()[0].form)["SendAt"] == "2026-11-26T15:00:00Z"


async def test_the_chosen_account_is_the_one_used(stack: Stack) -> None:
    """With two accounts, the form's account select decides whose credentials Twilio sees."""
    await stack.add_account(label="backup", sid=OTHER_ACCOUNT_SID, token=stack.other_token)
    view = await _form(stack, "send --account backup")
    assert initial_values(view)["account"] == "backup"
    await stack.submit(view["id"], {"to": TO, "body": "via backup", "from": "+15550000001"})
    (create,) = stack.twilio.creates()
    assert create.username == OTHER_ACCOUNT_SID
    assert "*backup*" in card_text(stack.last_card())

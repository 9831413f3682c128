"""Live delivery status, end to end: Twilio's signed status callbacks into the real server, cards in Slack.

Callbacks here are signed by twilio-python's own `RequestValidator` (the oracle), over the URL Twilio
would have called: PUBLIC_URL + path + query when it is set, else the URL the bot received.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from builders import claimed_send
from harness import Stack, card_text, restart_bot
from twilio.request_validator import RequestValidator

from bot.operations import Context
from bot.sandbox.slack import GENERAL_ID, OPS_ID, PRIVATE_ID
from bot.sandbox.twilio import SANDBOX_ACCOUNT_SID, SimClock
from bot.webhooks import MAX_WEBHOOK_BODY
from bot.workspace import AccountSetup
from storage.accounts import NewAccount
from storage.outbox import Settlement

TO = "+15551234567"
KEY_SECRET = "api-key-secret-0123456789"
START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
StackFactory = Callable[..., Awaitable[Stack]]


def _sid(card: Mapping[str, Any]) -> str:
    found = re.search(r"\b(SM[0-9a-f]{32})\b", card_text(card))
    assert found, "the card shows no message SID"
    return found.group(1)


def status_form(
    sid: str, status: str, *, error_code: int | None = None, account: str = SANDBOX_ACCOUNT_SID
) -> dict[str, str]:
    """The form Twilio posts to a StatusCallback."""
    form = {
        "AccountSid": account,
        "ApiVersion": "2010-04-01",
        "From": "+15557654321",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": TO,
    }
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    return form


async def post_callback(
    stack: Stack,
    form: Mapping[str, str],
    *,
    token: str | None = None,
    path: str = "/twilio/status",
    signed_url: str | None = None,
    signature: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> int:
    """POST a status callback to the bot, signed by RequestValidator over the URL Twilio would call."""
    url = signed_url or (stack.settings.public_url or stack.bot_url) + path
    headers = {"Content-Type": content_type}
    if signature is None:
        signature = RequestValidator(token or stack.twilio_token).compute_signature(url, dict(form))
    if signature:
        headers["X-Twilio-Signature"] = signature
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            stack.bot_url + path, data=body if body is not None else dict(form), headers=headers
        ) as resp,
    ):
        return resp.status


async def send(stack: Stack, text: str = "hello live", channel_id: str = GENERAL_ID) -> str:
    """Send a text through Slack and return its SID (from the card)."""
    await stack.command(f"send {TO} {text}", channel_id=channel_id)
    return _sid(stack.last_card(channel_id))


def updates(stack: Stack, channel_id: str = GENERAL_ID) -> list[Any]:
    """The chat.update calls the bot made in `channel_id`."""
    return [c for c in stack.slack.calls_to("chat.update") if c.args.get("channel") == channel_id]


async def _late_report_changes_nothing(stack: Stack, sid: str, status: str, *, still: str) -> None:
    """Twilio reports `status` after the card's final state: no update, and the card still says `still`."""
    calls = len(updates(stack))
    assert await post_callback(stack, status_form(sid, status)) == 204
    await stack.settle()
    assert len(updates(stack)) == calls
    assert still in card_text(stack.last_card())


@pytest.fixture
async def live(make_stack: StackFactory) -> Stack:
    """A bot with PUBLIC_URL at its own address (status callbacks on) and a short update interval."""
    return await make_stack(live_status=True, status_update_interval=0.2)


# ── creates carry StatusCallback ─────────────────────────────────────────────────────────────────────


async def test_with_public_url_every_create_carries_the_status_callback(live: Stack) -> None:
    """Send and schedule ask Twilio to report to PUBLIC_URL/twilio/status."""
    await live.command(f"send {TO} hi")
    await live.command(f"schedule {TO} in 2h later")
    creates = live.twilio.creates()
    assert len(creates) == 2
    for create in creates:
        assert ("StatusCallback", f"{live.settings.public_url}/twilio/status") in create.form


async def test_without_public_url_nothing_changes(stack: Stack) -> None:
    """No PUBLIC_URL: no StatusCallback, and a callback for the card's message changes nothing."""
    sid = await send(stack)
    assert all(name != "StatusCallback" for name, _ in stack.twilio.creates()[0].form)
    assert await post_callback(stack, status_form(sid, "delivered")) == 204
    await stack.settle()
    assert stack.slack.calls_to("chat.update") == []


async def test_help_says_how_to_turn_live_status_on_and_when_it_is_on(stack: Stack, live: Stack) -> None:
    """Without PUBLIC_URL `/twilio help` names it; with it, help says cards update by themselves."""
    await stack.command("help")
    assert "PUBLIC_URL" in stack.ephemeral_texts()[-1]
    await live.command("help")
    shown = live.ephemeral_texts()[-1]
    assert "update by themselves" in shown and "PUBLIC_URL" not in shown


# ── the card follows ─────────────────────────────────────────────────────────────────────────────────


async def test_a_card_goes_from_queued_to_delivered_by_itself(live: Stack) -> None:
    """Reports for sent, then delivered, redraw the card in place; nobody clicks."""
    sid = await send(live)
    assert "queued" in card_text(live.last_card())
    assert await post_callback(live, status_form(sid, "sent")) == 204
    await live.settle()
    assert "sent" in card_text(live.last_card())
    assert await post_callback(live, status_form(sid, "delivered")) == 204
    await live.settle()
    card = live.last_card()
    assert len(live.cards()) == 1
    assert "✅ delivered" in card_text(card) and "Status updated" in card_text(card)
    assert [c.ok for c in updates(live)] == [True, True]


async def test_undelivered_shows_the_error_in_plain_words_with_its_link(live: Stack) -> None:
    """Undelivered with 30003: the card says what it means and links Twilio's page for the code."""
    sid = await send(live)
    assert await post_callback(live, status_form(sid, "undelivered", error_code=30003)) == 204
    await live.settle()
    text = card_text(live.last_card())
    assert "❌ undelivered" in text
    assert "30003" in text and "could not be reached" in text
    assert "https://www.twilio.com/docs/api/errors/30003" in text


async def test_late_and_repeated_reports_change_nothing_and_call_no_slack(live: Stack) -> None:
    """After delivered, a late sent and a second delivered are answered 204 and cost no Slack call."""
    sid = await send(live)
    assert await post_callback(live, status_form(sid, "delivered")) == 204
    await live.settle()
    before = len(live.slack.calls)
    for status in ("sent", "delivered", "queued"):
        assert await post_callback(live, status_form(sid, status)) == 204
    await live.settle()
    assert len(live.slack.calls) == before
    assert "✅ delivered" in card_text(live.last_card())
    record = await live.runtime.stores.message_cards.get(sid)
    assert record is not None and record.status == "delivered" and record.shown_status == "delivered"


async def test_canceled_ends_a_scheduled_message(live: Stack) -> None:
    """A scheduled card moves to canceled; a queued that comes after changes nothing."""
    await live.command(f"schedule {TO} in 2h later")
    sid = _sid(live.last_card())
    assert "scheduled" in card_text(live.last_card())
    assert await post_callback(live, status_form(sid, "canceled")) == 204
    await live.settle()
    assert "🚫 canceled" in card_text(live.last_card())
    await _late_report_changes_nothing(live, sid, "queued", still="🚫 canceled")


async def test_a_scheduled_message_moves_on_by_itself(live: Stack) -> None:
    """scheduled → queued → delivered, each by a report."""
    await live.command(f"schedule {TO} in 2h later")
    sid = _sid(live.last_card())
    for status in ("queued", "delivered"):
        assert await post_callback(live, status_form(sid, status)) == 204
        await live.settle()
        assert status in card_text(live.last_card())


async def test_an_unknown_message_sid_is_acknowledged_and_posts_nothing(live: Stack) -> None:
    """A message sent outside the bot: 204, and Slack hears nothing."""
    assert await post_callback(live, status_form("SM" + "0" * 32, "delivered")) == 204
    await live.settle()
    assert live.slack.calls == []


async def test_the_log_channel_copy_is_updated_too(live: Stack) -> None:
    """With a log channel, the copy there follows the status like the card."""
    await live.command(f"log-channel {OPS_ID}")
    sid = await send(live)
    assert await post_callback(live, status_form(sid, "delivered")) == 204
    await live.settle()
    assert "✅ delivered" in card_text(live.last_card(GENERAL_ID))
    assert "✅ delivered" in card_text(live.last_card(OPS_ID))


async def test_a_card_sent_by_response_url_says_it_is_not_live(live: Stack) -> None:
    """In a channel without the bot the card says its status is not live; reports change nothing there."""
    await live.command(f"send {TO} private hello", channel_id=PRIVATE_ID)
    (card,) = live.cards(PRIVATE_ID)
    text = card_text(card)
    assert "not live" in text and "Refresh status" in text
    sid = _sid(card)
    assert await post_callback(live, status_form(sid, "delivered")) == 204
    await live.settle()
    assert live.slack.calls_to("chat.update") == []


# ── coalescing and rate limits ───────────────────────────────────────────────────────────────────────


async def test_a_burst_gives_each_card_at_most_one_update_per_interval_and_its_final_state(
    make_stack: StackFactory,
) -> None:
    """Four cards, each reported queued→sent→delivered twice over at once: ≤ 1 update per 2 s, all final."""
    stack = await make_stack(live_status=True)  # the real 2 s interval
    sids = [await send(stack, f"burst {n}") for n in range(4)]
    for _ in range(2):
        for status in ("queued", "sending", "sent", "delivered"):
            for sid in sids:
                assert await post_callback(stack, status_form(sid, status)) == 204
    await stack.settle()
    by_ts: dict[str, list[float]] = {}
    for call in updates(stack):
        assert call.ok
        by_ts.setdefault(str(call.args["ts"]), []).append(call.time)
    assert len(by_ts) == 4
    for times in by_ts.values():
        assert all(b - a >= 1.9 for a, b in itertools.pairwise(times)), times
        assert len(times) <= 2
    for card in stack.cards():
        assert "✅ delivered" in card_text(card)


async def test_slack_429_is_honoured_and_the_final_state_still_lands(live: Stack) -> None:
    """chat.update answered 429 with Retry-After 1: the bot waits that long, then shows the final state."""
    sid = await send(live)
    live.slack.inject("chat.update", status=429, retry_after=1)
    assert await post_callback(live, status_form(sid, "delivered")) == 204
    await live.settle()
    refused, shown = updates(live)
    assert not refused.ok and shown.ok
    assert shown.time - refused.time >= 0.95
    assert "✅ delivered" in card_text(live.last_card())


# ── signatures ───────────────────────────────────────────────────────────────────────────────────────


async def test_signed_over_the_url_as_received_with_its_port(stack: Stack) -> None:
    """Without PUBLIC_URL the bot checks the URL it received, port included, as Twilio signed it."""
    assert stack.settings.public_url is None and re.search(r":\d+$", stack.bot_url)
    sid = "SM" + "1" * 32
    assert await post_callback(stack, status_form(sid, "sent")) == 204
    assert await post_callback(stack, status_form(sid, "sent"), token="wrong-token-000000") == 403


async def test_signed_over_public_url_with_a_query_string(make_stack: StackFactory) -> None:
    """Behind a proxy: the signature covers PUBLIC_URL + path + query, not the local address."""
    stack = await make_stack(public_url="https://bridge.example.com:8443")
    path = "/twilio/status?tenant=a%20b&x=1"
    form = status_form("SM" + "2" * 32, "sent")
    assert await post_callback(stack, form, path=path) == 204
    local = stack.bot_url + path
    assert await post_callback(stack, form, path=path, signed_url=local) == 403
    without_query = "https://bridge.example.com:8443/twilio/status"
    assert await post_callback(stack, form, path=path, signed_url=without_query) == 403


async def test_forged_callbacks_get_403_and_change_nothing(live: Stack) -> None:
    """No signature, a wrong one, another token, an unknown account, a changed field: 403, card unchanged."""
    sid = await send(live)
    form = status_form(sid, "delivered")
    good = RequestValidator(live.twilio_token).compute_signature(
        f"{live.settings.public_url}/twilio/status", form
    )
    assert await post_callback(live, form, signature="") == 403
    assert await post_callback(live, form, signature=good[:-2] + "AA") == 403
    assert await post_callback(live, form, token=live.other_token) == 403
    unknown = status_form(sid, "delivered", account="AC" + "c" * 32)
    assert await post_callback(live, unknown) == 403
    tampered = {**form, "MessageStatus": "failed"}
    assert await post_callback(live, tampered, signature=good) == 403
    await live.settle()
    assert live.slack.calls_to("chat.update") == []
    record = await live.runtime.stores.message_cards.get(sid)
    assert record is not None and record.status == "queued"


async def test_an_api_key_account_without_a_webhook_token_is_refused_with_one_log_line(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Set up with an API key only: callbacks get 403 and the log says why, once; with the token, 204."""
    stack = await make_stack(live_status=True, with_account=False)
    accounts = stack.runtime.stores.accounts
    await accounts.add(
        NewAccount(
            team_id="T0PLAYGRND",
            label="keyed",
            account_sid=SANDBOX_ACCOUNT_SID,
            secret=KEY_SECRET,
            api_key_sid="SK" + "0" * 32,
            added_by="U0ADMIN",
        )
    )
    form = status_form("SM" + "3" * 32, "sent")
    with caplog.at_level(logging.WARNING, logger="bot.webhooks"):
        assert await post_callback(stack, form) == 403
        assert await post_callback(stack, form) == 403
    said = [r.getMessage() for r in caplog.records if "API key" in r.getMessage()]
    assert len(said) == 1 and "webhook" in said[0]
    assert stack.twilio_token not in caplog.text
    # The admin gives the auth token for webhooks (setup again, unchecked here): accepted at once.
    setup = AccountSetup(
        label="keyed",
        account_sid=SANDBOX_ACCOUNT_SID,
        secret=KEY_SECRET,
        api_key_sid="SK" + "0" * 32,
        webhook_token=stack.twilio_token,
    )
    who = Context(team_id="T0PLAYGRND", user_id="U0ADMIN", channel_id=None)
    await stack.runtime.services.workspace.set_up_account(who, setup, verify=False)
    assert await post_callback(stack, form) == 204


# ── bad input ────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"MessageSid": "", "SmsSid": ""}, 400),
        ({"MessageSid": "SMnope", "SmsSid": "SMnope"}, 400),
        ({"MessageStatus": "exploded", "SmsStatus": "exploded"}, 400),
        ({"MessageStatus": "", "SmsStatus": ""}, 400),
        ({"ErrorCode": "thirty"}, 400),
        ({"MessageStatus": "received", "SmsStatus": "received"}, 204),
    ],
)
async def test_bad_fields_get_a_sentence_never_a_500(
    live: Stack, change: dict[str, str], expected: int
) -> None:
    """A signed form without a usable MessageSid, status or error code: 400 (or 204 for inbound statuses)."""
    form = {**status_form("SM" + "4" * 32, "sent"), **change}
    assert await post_callback(live, form) == expected


async def test_a_body_over_64_kb_is_refused(live: Stack) -> None:
    """A body over 64 KB gets 413, before any signature work."""
    big = b"Body=" + b"x" * MAX_WEBHOOK_BODY
    assert await post_callback(live, {}, body=big, signature="x") == 413


async def test_a_body_that_is_not_a_form_or_not_utf8_is_refused(live: Stack) -> None:
    """JSON or bytes that are not UTF-8: 400 with a sentence."""
    assert await post_callback(live, {}, body=b"{}", content_type="application/json", signature="x") == 400
    assert await post_callback(live, {}, body=b"MessageSid=\xff\xfe", signature="x") == 400


# ── restarts ─────────────────────────────────────────────────────────────────────────────────────────


async def test_after_a_restart_open_cards_are_refreshed_once_from_twilio(make_stack: StackFactory) -> None:
    """Reports missed while the bot was down: at start the card asks Twilio and shows delivered."""
    clock = SimClock(START)
    stack = await make_stack(live_status=True, status_update_interval=0.2, clock=clock)
    sid = await send(stack)
    clock.advance(timedelta(seconds=10))  # the simulator has delivered it meanwhile
    fetches_before = len([r for r in stack.twilio.requests if r.method == "GET" and sid in r.path])
    await restart_bot(stack, clock=clock.now)
    fetches = [r for r in stack.twilio.requests if r.method == "GET" and sid in r.path]
    assert len(fetches) == fetches_before + 1
    assert "✅ delivered" in card_text(stack.last_card())
    record = await stack.runtime.stores.message_cards.get(sid)
    assert record is not None and record.shown_status == "delivered"
    # Final now: the next start asks nothing.
    await restart_bot(stack, clock=clock.now)
    assert len([r for r in stack.twilio.requests if r.method == "GET" and sid in r.path]) == len(fetches)


# ── with the Twilio simulator calling back, as Twilio does ───────────────────────────────────────────


async def _callbacks_done(stack: Stack) -> None:
    """Let the simulator send what is due by its clock, then wait for the bot's work."""
    await stack.twilio.settle_callbacks()
    await stack.settle()


async def test_the_simulator_s_signed_callbacks_turn_a_card_delivered(live: Stack) -> None:
    """Twilio's schedule (queued → sent → delivered), signed by the simulator: 204 each, card delivered."""
    sid = await send(live)
    live.twilio.clock.advance(timedelta(seconds=5))
    await _callbacks_done(live)
    made = [w for w in live.twilio.status_callbacks if w.message_sid == sid]
    assert [w.message_status for w in made] == ["queued", "sent", "delivered"]
    assert all(w.status == 204 for w in made)
    assert "✅ delivered" in card_text(live.last_card())
    assert live.slack.calls_to("chat.update")  # redrawn in place, nobody clicked
    assert len(live.cards()) == 1


async def test_a_0666_number_ends_undelivered_with_30003_in_plain_words(live: Stack) -> None:
    """The simulator's unreachable numbers: the card says undelivered, what 30003 means, and links it."""
    await live.command("send +15551230666 are you there")
    live.twilio.clock.advance(timedelta(seconds=5))
    await _callbacks_done(live)
    text = card_text(live.last_card())
    assert "❌ undelivered" in text and "could not be reached" in text and "errors/30003" in text


async def test_callbacks_in_reverse_order_leave_the_card_delivered_after_one_update(live: Stack) -> None:
    """delivered, then sent, then queued: only the first moves the card; the late ones cost nothing."""
    live.twilio.hold_callbacks()
    sid = await send(live)
    live.twilio.clock.advance(timedelta(seconds=5))
    await live.twilio.settle_callbacks()
    assert await live.twilio.flush_callbacks(order="reverse") == 3
    await live.settle()
    assert [w.message_status for w in live.twilio.status_callbacks if w.message_sid == sid] == [
        "delivered",
        "sent",
        "queued",
    ]
    assert len(updates(live)) == 1
    assert "✅ delivered" in card_text(live.last_card())


async def test_a_callback_delivered_twice_updates_the_card_once(live: Stack) -> None:
    """The simulator sends delivered twice: the second changes nothing and costs no Slack call."""
    from bot.sandbox.twilio import CallbackFault

    live.twilio.callback_faults.inject(CallbackFault("duplicate", status="delivered"))
    sid = await send(live)
    live.twilio.clock.advance(timedelta(seconds=1))
    await _callbacks_done(live)
    assert "sent" in card_text(live.last_card())
    before = len(updates(live))
    live.twilio.clock.advance(timedelta(seconds=4))
    await _callbacks_done(live)
    delivered = [
        w for w in live.twilio.status_callbacks if w.message_sid == sid and w.message_status == "delivered"
    ]
    assert len(delivered) == 2 and all(w.status == 204 for w in delivered)
    assert len(updates(live)) == before + 1
    assert "✅ delivered" in card_text(live.last_card())


async def test_a_callback_that_never_comes_is_caught_up_at_the_next_start(make_stack: StackFactory) -> None:
    """delivered is never sent: the card stays at sent until a restart asks Twilio, then shows delivered."""
    from bot.sandbox.twilio import CallbackFault

    clock = SimClock(START)
    stack = await make_stack(live_status=True, status_update_interval=0.2, clock=clock)
    stack.twilio.callback_faults.inject(CallbackFault("drop", status="delivered"))
    await send(stack)
    clock.advance(timedelta(seconds=5))
    await _callbacks_done(stack)
    assert "✅ sent" in card_text(stack.last_card())
    await restart_bot(stack, clock=clock.now)
    assert "✅ delivered" in card_text(stack.last_card())


async def test_a_scheduled_card_moves_on_at_its_time_and_a_cancel_shows_canceled(live: Stack) -> None:
    """scheduled, then at SendAt queued → sent → delivered by itself; another one canceled by its button."""
    await live.command(f"schedule {TO} in 2h later")
    first = live.last_card()
    live.twilio.clock.advance(timedelta(hours=2, seconds=5))
    await _callbacks_done(live)
    assert "✅ delivered" in card_text(live.cards()[0])
    await live.command(f"schedule {TO} in 3h cancel me")
    second = live.last_card()
    assert second["ts"] != first["ts"]
    await live.click(second, "cancel_message")
    await _callbacks_done(live)
    assert "🚫 canceled" in card_text(live.last_card())


async def test_another_workspace_s_account_cannot_move_our_card(live: Stack) -> None:
    """A report correctly signed for another stored account, naming our message: 204, nothing changes."""
    from harness import OTHER_ACCOUNT_SID, OTHER_TEAM

    await live.add_account(team_id=OTHER_TEAM, sid=OTHER_ACCOUNT_SID, token=live.other_token)
    sid = await send(live)
    forged = status_form(sid, "failed", error_code=30007, account=OTHER_ACCOUNT_SID)
    assert await post_callback(live, forged, token=live.other_token) == 204
    await live.settle()
    assert live.slack.calls_to("chat.update") == []
    record = await live.runtime.stores.message_cards.get(sid)
    assert record is not None and record.status == "queued"


async def test_a_deleted_card_is_not_drawn_back_by_a_late_report(live: Stack) -> None:
    """Delete a delivered message from its card: a later read report leaves the card deleted."""
    sid = await send(live)
    live.twilio.clock.advance(timedelta(seconds=5))
    await _callbacks_done(live)
    await live.click(live.last_card(), "delete_message")
    assert "Message deleted" in card_text(live.last_card())
    await _late_report_changes_nothing(live, sid, "read", still="Message deleted")


async def _post_chunked(stack: Stack, body: bytes, signature: str) -> int:
    async def pieces() -> Any:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{stack.bot_url}/twilio/status", data=pieces(), headers=headers) as resp,
    ):
        return resp.status


async def test_a_body_sent_in_pieces_without_a_length_is_read_whole(live: Stack) -> None:
    """Chunked in 7-byte pieces: the whole form is read and its signature holds; 64 KB still caps it."""
    from urllib.parse import urlencode

    sid = await send(live)
    form = status_form(sid, "delivered")
    url = f"{live.settings.public_url}/twilio/status"
    signature = RequestValidator(live.twilio_token).compute_signature(url, form)
    assert await _post_chunked(live, urlencode(form).encode(), signature) == 204
    await live.settle()
    assert "✅ delivered" in card_text(live.last_card())
    assert await _post_chunked(live, b"Body=" + b"x" * MAX_WEBHOOK_BODY, signature) == 413


async def test_a_card_posted_by_start_up_recovery_is_live_too(make_stack: StackFactory) -> None:
    """A create a dead process left without its card: the restart posts it, and reports then redraw it."""
    from bot.sandbox.twilio import DEFAULT_FROM
    from bot.twilio.models import Credentials

    clock = SimClock(START)
    stack = await make_stack(live_status=True, status_update_interval=0.2, clock=clock)
    creds = Credentials(account_sid=SANDBOX_ACCOUNT_SID, secret=stack.twilio_token)
    message = await stack.runtime.services.operations.twilio.send(
        creds, to=TO, body="left behind", from_=DEFAULT_FROM
    )
    outbox = stack.runtime.stores.outbox
    key = "cmd:T0PLAYGRND:1234.5678.dead"
    request = {"to": TO, "from": DEFAULT_FROM, "body": "left behind"}
    await outbox.claim(claimed_send(key, request))
    await outbox.settle(key, Settlement("sent", message_sid=message.sid))
    await restart_bot(stack, clock=clock.now)
    assert "after the bot restarted" in card_text(stack.last_card())
    assert await post_callback(stack, status_form(message.sid, "delivered")) == 204
    await stack.settle()
    (card,) = stack.cards()
    assert "✅ delivered" in card_text(card) and "after the bot restarted" in card_text(card)

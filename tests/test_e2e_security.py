"""Who may do what, whose credentials are used, and how the bot behaves when Slack or Twilio misbehave."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlencode

import aiohttp
from harness import OTHER_ACCOUNT_SID, OTHER_TEAM, Stack, buttons, card_text, json_text
from waiting import until

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, MEMBER_ID, OPS_ID, PRIVATE_ID, TEAM_ID
from bot.sandbox.twilio import DEFAULT_FROM, SANDBOX_ACCOUNT_SID, Fault

TO = "+15551234567"
StackFactory = Callable[..., Awaitable[Stack]]


def _command(text: str, *, team_id: str = TEAM_ID, user_id: str = ADMIN_ID) -> bytes:
    """A slash command form body as Slack sends it (no response_url: the bot must manage without)."""
    return urlencode(
        {
            "team_id": team_id,
            "team_domain": "elsewhere",
            "channel_id": GENERAL_ID,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": "someone",
            "command": "/twilio",
            "text": text,
            "api_app_id": "A0PLAYGRND",
            "trigger_id": "1.2.3",
        }
    ).encode()


def _sandbox_requests(stack: Stack) -> list[object]:
    return [r for r in stack.twilio.requests if SANDBOX_ACCOUNT_SID in {r.username, r.account_sid}]


# ── admins ───────────────────────────────────────────────────────────────────────────────────────────


async def test_admin_user_ids_may_run_setup_and_log_channel(make_stack: StackFactory) -> None:
    """A member listed in ADMIN_USER_IDS may open setup and set the log channel."""
    stack = await make_stack(admin_user_ids=frozenset({MEMBER_ID}))
    await stack.command("setup", user_id=MEMBER_ID)
    assert stack.opened_view()["callback_id"] == "twilio_setup"
    await stack.command(f"log-channel <#{OPS_ID}|ops>", user_id=MEMBER_ID)
    await stack.command(f"send {TO} logged", user_id=MEMBER_ID)
    _notice, copy = stack.cards(OPS_ID)
    assert "logged" in card_text(copy)
    assert not any("Only workspace admins" in t for t in stack.ephemeral_texts(MEMBER_ID))


async def test_a_member_cannot_store_an_account_through_setup(stack: Stack) -> None:
    """Neither the setup command nor the log-channel command does anything for a plain member."""
    await stack.command("setup", user_id=MEMBER_ID)
    await stack.command("log-channel off", user_id=MEMBER_ID)
    assert all("Only workspace admins" in t for t in stack.ephemeral_texts(MEMBER_ID))
    assert len(stack.ephemeral_texts(MEMBER_ID)) == 2
    assert stack.slack.calls_to("views.open") == []
    assert stack.twilio.requests == []


# ── tenants ──────────────────────────────────────────────────────────────────────────────────────────


async def test_another_team_without_an_account_never_reaches_ours(stack: Stack) -> None:
    """A signed command from another workspace with no account makes no Twilio call at all."""
    other = await stack.slack_for_team(OTHER_TEAM)
    resp = await other.slash_command(f"send {TO} borrowing your account")
    assert resp.status == 200
    await stack.settle()
    assert stack.twilio.requests == []
    assert stack.cards() == []
    (told,) = other.ephemerals  # the "Working on it" ack is gone once this is shown
    assert "No Twilio account" in str(told["text"])


async def test_another_team_uses_its_own_twilio_account(stack: Stack) -> None:
    """Another workspace's send goes out with its own account SID, never ours."""
    await stack.add_account(team_id=OTHER_TEAM, label="main", sid=OTHER_ACCOUNT_SID, token=stack.other_token)
    other = await stack.slack_for_team(OTHER_TEAM)
    await other.slash_command(f"send {TO} from the other team --from +15550000001")
    await stack.settle()
    (create,) = stack.twilio.creates()
    assert create.username == OTHER_ACCOUNT_SID and create.account_sid == OTHER_ACCOUNT_SID
    assert _sandbox_requests(stack) == []


async def test_another_team_cannot_pick_our_account_by_label(stack: Stack) -> None:
    """`--account main` from another workspace names only that workspace's accounts."""
    await stack.add_account(
        team_id=OTHER_TEAM, label="theirs", sid=OTHER_ACCOUNT_SID, token=stack.other_token
    )
    other = await stack.slack_for_team(OTHER_TEAM)
    await other.slash_command(f"send {TO} hi --account main")
    await other.slash_command("accounts")
    await stack.settle()
    assert stack.twilio.requests == []
    told = "\n".join(str(e["text"]) + json_text(e.get("blocks") or []) for e in other.ephemerals)
    assert "no Twilio account labelled 'main'" in told and "theirs" in told
    assert SANDBOX_ACCOUNT_SID[-4:] not in told


async def test_a_request_signed_for_another_team_uses_that_team(stack: Stack) -> None:
    """A hand-signed command for another team (no response_url) still never touches our account."""
    status, _ = await stack.post_signed(_command(f"send {TO} sneaky", team_id=OTHER_TEAM))
    assert status == 200
    await stack.settle()
    assert stack.twilio.requests == []
    assert stack.cards() == []


async def test_buttons_naming_our_label_do_not_cross_teams(stack: Stack) -> None:
    """Another team's click carrying our message SID and our label uses its own `main`, never ours."""
    await stack.command(f"send {TO} ours")
    card = stack.last_card()
    value = buttons(card)["delete_message"]["value"]
    assert json.loads(value)["account"] == "main"
    await stack.add_account(team_id=OTHER_TEAM, label="main", sid=OTHER_ACCOUNT_SID, token=stack.other_token)
    stack.twilio.clock.advance(timedelta(seconds=5))
    before = len(stack.twilio.requests)
    for action in ("delete_message", "refresh_message", "cancel_message"):
        status, _ = await stack.post_interaction(
            {
                "type": "block_actions",
                "team": {"id": OTHER_TEAM, "domain": "elsewhere"},
                "user": {"id": MEMBER_ID, "team_id": OTHER_TEAM},
                "api_app_id": "A0PLAYGRND",
                "trigger_id": "1.2.3",
                "container": {"type": "message", "message_ts": card["ts"], "channel_id": GENERAL_ID},
                "channel": {"id": GENERAL_ID, "name": "general"},
                "actions": [{"action_id": action, "block_id": "b", "type": "button", "value": value}],
            }
        )
        assert status == 200
    await stack.settle()
    theirs = stack.twilio.requests[before:]
    assert len(theirs) == 3
    assert {r.username for r in theirs} == {OTHER_ACCOUNT_SID}
    assert {r.status for r in theirs} == {404}  # our message is not in their account
    assert [m.body for m in stack.twilio.messages.values()] == ["ours"]
    assert stack.last_card() == card  # our card was not touched by their clicks


async def test_a_next_page_link_into_our_account_is_refused(stack: Stack) -> None:
    """Another team's Next page click carrying a link into our account makes no Twilio call."""
    for word in ("a", "b", "c"):
        await stack.command(f"send {TO} {word}")
    await stack.command("list --limit 2")
    listing = stack.last_card()
    value = buttons(listing)["list_next_page"]["value"]
    await stack.add_account(team_id=OTHER_TEAM, label="main", sid=OTHER_ACCOUNT_SID, token=stack.other_token)
    before = len(stack.twilio.requests)
    status, _ = await stack.post_interaction(
        {
            "type": "block_actions",
            "team": {"id": OTHER_TEAM},
            "user": {"id": MEMBER_ID, "team_id": OTHER_TEAM},
            "trigger_id": "1.2.3",
            "container": {"type": "message", "message_ts": listing["ts"], "channel_id": GENERAL_ID},
            "channel": {"id": GENERAL_ID},
            "actions": [{"action_id": "list_next_page", "block_id": "b", "type": "button", "value": value}],
        }
    )
    assert status == 200
    await stack.settle()
    assert stack.twilio.requests[before:] == []
    assert stack.last_card() == listing
    assert "run `/twilio list` again" in card_text(stack.slack.ephemerals[-1])


# ── signatures ───────────────────────────────────────────────────────────────────────────────────────


async def _refused(stack: Stack, status: int) -> None:
    assert status == 401
    await stack.settle()
    assert stack.twilio.requests == []
    assert stack.cards() == []
    assert [c.method for c in stack.slack.calls if c.method != "auth.test"] == []


async def test_an_unsigned_request_gets_401_and_does_nothing(stack: Stack) -> None:
    """No signature headers: 401, no Twilio call, nothing in Slack."""
    status, _ = await stack.post_signed(_command(f"send {TO} unsigned"), signature="")
    await _refused(stack, status)


async def test_a_forged_request_gets_401_and_does_nothing(stack: Stack) -> None:
    """Signed with the wrong secret: 401, nothing done."""
    status, _ = await stack.post_signed(_command(f"send {TO} forged"), secret="not-the-secret")
    await _refused(stack, status)


async def test_a_stale_request_gets_401_and_does_nothing(stack: Stack) -> None:
    """Correctly signed but six minutes old (a replay): 401, nothing done."""
    status, _ = await stack.post_signed(_command(f"send {TO} replayed"), timestamp=int(time.time()) - 360)
    await _refused(stack, status)


# ── the 3 seconds, Slack's failures ──────────────────────────────────────────────────────────────────


async def test_the_ack_does_not_wait_for_twilio(stack: Stack) -> None:
    """While Twilio holds the create, the command is already acked; the card follows the answer."""
    stack.twilio.inject(Fault(kind="apply_then_hold", method="POST"))
    resp = await stack.slack.slash_command(f"send {TO} slow twilio")
    assert resp.status == 200 and resp.error is None
    assert "Working on it" in resp.body
    await until(stack.twilio.wait_held(1), what="Twilio to hold the create")
    assert stack.cards() == []
    assert stack.twilio.release_held() == 1
    await stack.settle()
    assert "slow twilio" in card_text(stack.last_card())
    assert len(stack.twilio.creates()) == 1


async def test_a_private_channel_without_the_bot_gets_the_card_by_response_url(stack: Stack) -> None:
    """In a channel the bot is not in, the card comes through the reply link, visible to all, with a hint."""
    await stack.command(f"send {TO} private hello", channel_id=PRIVATE_ID)
    (failed,) = stack.slack.calls_to("chat.postMessage")
    assert failed.response["error"] == "not_in_channel"
    (card,) = stack.cards(PRIVATE_ID)
    text = card_text(card)
    assert "private hello" in text and "/invite" in text
    reply, dismissed = stack.slack.calls_to("response_url")
    assert reply.args["response_type"] == "in_channel"
    assert dismissed.args.get("delete_original") is True and dismissed.ok  # the "Working on it" note
    assert len(stack.twilio.creates()) == 1


async def test_a_slack_rate_limit_is_retried_and_the_card_posted_once(stack: Stack) -> None:
    """A 429 with Retry-After 0 on chat.postMessage is retried; exactly one card appears."""
    stack.slack.inject("chat.postMessage", status=429, retry_after=0)
    await stack.command(f"send {TO} rate limited")
    posts = stack.slack.calls_to("chat.postMessage")
    assert [c.status for c in posts] == [429, 200]
    assert len(stack.cards()) == 1
    assert len(stack.twilio.creates()) == 1


# ── size ─────────────────────────────────────────────────────────────────────────────────────────────


async def test_a_list_of_1000_messages_fits_block_kit(stack: Stack) -> None:
    """`list --limit 1000` over 1000 messages posts a valid card that says how many it shows."""
    url = f"{stack.twilio.url}/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages.json"
    token = base64.b64encode(f"{SANDBOX_ACCOUNT_SID}:{stack.twilio_token}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as session:

        async def create(i: int) -> None:
            body = f"bulk message {i} <!channel> " + "x" * 40
            async with session.post(url, data={"To": TO, "From": DEFAULT_FROM, "Body": body}) as resp:
                assert resp.status == 201

        await asyncio.gather(*(create(i) for i in range(1000)))
    await stack.command("list --limit 1000")
    (post,) = stack.slack.calls_to("chat.postMessage")
    assert post.ok, post.response
    assert stack.slack.problems == []
    text = card_text(stack.last_card())
    assert "of 1000 on this page" in text
    assert "<!channel>" not in text

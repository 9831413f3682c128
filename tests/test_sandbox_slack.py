"""The Slack simulator over real HTTP: Web API, faults, and the signed requests it sends to a bot."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from sandbox_helpers import SLACK_SECRET, FakeClock, running_slack, serve
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from waiting import until

from bot.sandbox.slack import (
    ADMIN_ID,
    BOT_USER_ID,
    GENERAL_ID,
    MEMBER_ID,
    OPS_ID,
    PRIVATE_ID,
    SlackSimulator,
    parse_yaml_subset,
    read_manifest,
    validate_blocks,
)

TOKEN = "xoxb-playground-token"


@dataclass
class Received:
    """One request the fake bot got."""

    body: bytes
    headers: dict[str, str]
    form: dict[str, str]
    payload: dict[str, Any] | None
    signature_ok: bool


Answer = Callable[[Received], Awaitable[web.Response]]


@dataclass
class FakeBot:
    """A tiny aiohttp app standing in for the bot's /slack/events; answers are programmable."""

    requests: list[Received] = field(default_factory=list)
    answer: Answer | None = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        """Record the request, check its signature like Bolt does, and answer."""
        body = await request.read()
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        payload = json.loads(form["payload"]) if "payload" in form else None
        ok = SignatureVerifier(SLACK_SECRET).is_valid(
            body=body,
            timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
            signature=request.headers.get("X-Slack-Signature", ""),
        )
        received = Received(body, dict(request.headers), form, payload, ok)
        self.requests.append(received)
        if self.answer is not None:
            return await self.answer(received)
        return web.Response()


@pytest.fixture
async def sim() -> AsyncIterator[SlackSimulator]:
    """A running simulator without a manifest (so no scope checks)."""
    hints = [("send", "send TO BODY… [--from FROM]"), ("help", "help")]
    async with running_slack(TOKEN, command_hints=hints) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: SlackSimulator) -> AsyncWebClient:
    """slack_sdk's client pointed at the simulator."""
    return AsyncWebClient(token=TOKEN, base_url=sim.api_url)


@pytest.fixture
async def bot(sim: SlackSimulator) -> AsyncIterator[FakeBot]:
    """A fake bot on port 0, wired as the simulator's request URL."""
    fake = FakeBot()
    async with serve({"/slack/events": fake.handle}) as base:
        fake.url = f"{base}/slack/events"
        sim.set_bot_url(fake.url)
        yield fake


def button(action_id: str, text: str = "Go", **extra: Any) -> dict[str, Any]:
    """A Block Kit button."""
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}, **extra}


def modal(**extra: Any) -> dict[str, Any]:
    """A modal with one required text input and one optional datetimepicker."""
    return {
        "type": "modal",
        "callback_id": "send",
        "private_metadata": json.dumps({"channel_id": GENERAL_ID}),
        "title": {"type": "plain_text", "text": "Send an SMS"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "to",
                "label": {"type": "plain_text", "text": "To"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
            {
                "type": "input",
                "block_id": "when",
                "optional": True,
                "label": {"type": "plain_text", "text": "When"},
                "element": {"type": "datetimepicker", "action_id": "value"},
            },
        ],
        **extra,
    }


# ------------------------------------------------------------------ Web API


async def open_from_command(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient, view: dict[str, Any]
) -> str:
    """`/twilio send` answered by opening `view` with the command's trigger_id; the open view's id."""

    async def open_modal(received: Received) -> web.Response:
        await client.views_open(trigger_id=received.form["trigger_id"], view=view)
        return web.Response()

    bot.answer = open_modal
    await sim.slash_command("send")
    (view_id,) = sim.views
    return view_id


async def test_web_api_checks_the_bot_token(sim: SlackSimulator) -> None:
    """A wrong or missing token gets invalid_auth / not_authed; the right one gets auth.test's shape."""
    with pytest.raises(SlackApiError) as wrong:
        await AsyncWebClient(token="xoxb-wrong", base_url=sim.api_url).auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    async with aiohttp.ClientSession() as session, session.post(f"{sim.api_url}auth.test") as resp:
        assert (await resp.json())["error"] == "not_authed"
    ok = await AsyncWebClient(token=TOKEN, base_url=sim.api_url).auth_test()
    assert ok["user_id"] == BOT_USER_ID and ok["team_id"] == sim.team_id and ok["bot_id"] == "B0BOT"
    assert [c.method for c in sim.calls] == ["auth.test", "auth.test", "auth.test"]


async def test_unknown_method_is_refused(client: AsyncWebClient) -> None:
    """Methods the simulator does not know answer unknown_method."""
    with pytest.raises(SlackApiError) as err:
        await client.api_call("chat.scheduleMessagez")
    assert err.value.response["error"] == "unknown_method"


async def test_post_update_and_delete_change_the_channel(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """Posted messages get increasing ts, updates replace them, deletes remove them."""
    first = await client.chat_postMessage(channel=GENERAL_ID, text="one")
    second = await client.chat_postMessage(channel="#general", text="two", thread_ts=first["ts"])
    assert float(second["ts"]) > float(first["ts"]) and first["channel"] == GENERAL_ID
    await client.chat_update(
        channel=GENERAL_ID,
        ts=first["ts"],
        text="one, edited",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*one*"}}],
    )
    stored = sim.message(GENERAL_ID, first["ts"])
    assert stored["text"] == "one, edited" and stored["blocks"][0]["text"]["text"] == "*one*"
    assert stored["reply_count"] == 1 and "edited" in stored
    await client.chat_delete(channel=GENERAL_ID, ts=second["ts"])
    assert [m["ts"] for m in sim.messages(GENERAL_ID)] == [first["ts"]]
    assert len(sim.calls_to("chat.postMessage")) == 2


async def test_blocks_may_come_as_a_json_string_in_a_form_body(sim: SlackSimulator) -> None:
    """Form-encoded calls with blocks as a JSON string are stored with block and action ids added."""
    blocks = json.dumps([{"type": "actions", "elements": [button("cancel")]}])
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{sim.api_url}chat.postMessage",
            data={"channel": OPS_ID, "text": "card", "blocks": blocks},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as resp,
    ):
        body = await resp.json()
    assert body["ok"] is True
    (message,) = sim.messages(OPS_ID)
    assert message["blocks"][0]["block_id"] and message["blocks"][0]["elements"][0]["action_id"] == "cancel"


async def test_ephemeral_messages_are_kept_apart(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """chat.postEphemeral returns message_ts and lands in sim.ephemerals, not in the channel."""
    answer = await client.chat_postEphemeral(channel=GENERAL_ID, user=MEMBER_ID, text="psst")
    assert answer["message_ts"]
    assert sim.ephemerals[0]["user"] == MEMBER_ID and sim.ephemerals[0]["text"] == "psst"
    assert sim.messages(GENERAL_ID) == []


async def test_private_channel_without_the_bot_is_not_in_channel(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """Posting to #private-team fails like Slack does; conversations.info cannot see it either."""
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=PRIVATE_ID, text="hello")
    assert err.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as info:
        await client.conversations_info(channel=PRIVATE_ID)
    assert info.value.response["error"] == "channel_not_found"
    assert sim.messages(PRIVATE_ID) == []


async def test_users_info_says_who_is_an_admin(client: AsyncWebClient) -> None:
    """users.info gives Slack's user shape with the admin flags the bot's permission checks read."""
    ada = (await client.users_info(user=ADMIN_ID))["user"]
    max_ = (await client.users_info(user=MEMBER_ID))["user"]
    assert ada["is_admin"] is True and ada["real_name"] == "Ada Admin" and "tz" in ada
    assert (
        max_["is_admin"] is False
        and max_["is_owner"] is False
        and max_["profile"]["real_name"] == "Max Member"
    )
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U0NOBODY")
    assert err.value.response["error"] == "user_not_found"


async def test_too_many_blocks_and_long_section_text_are_refused(client: AsyncWebClient) -> None:
    """51 blocks, a 3001-character section and ~13,000 characters of blocks fail as in Slack."""
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    with pytest.raises(SlackApiError) as many:
        await client.chat_postMessage(channel=GENERAL_ID, text="t", blocks=[section] * 51)
    assert many.value.response["error"] == "invalid_blocks"
    long = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    with pytest.raises(SlackApiError) as too_long:
        await client.chat_postMessage(channel=GENERAL_ID, text="t", blocks=[long])
    assert any("/blocks/0/text/text" in e for e in too_long.value.response["errors"])
    big = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 2900}} for _ in range(5)]
    with pytest.raises(SlackApiError) as heavy:
        await client.chat_postMessage(channel=GENERAL_ID, text="t", blocks=big)
    assert heavy.value.response["error"] == "msg_blocks_too_long"


def test_block_validation_catches_common_bot_bugs() -> None:
    """Unknown types, missing text, long headers, too many fields, long button text, duplicate action_ids."""
    errors = validate_blocks(
        [
            {"type": "sektion", "text": {"type": "mrkdwn", "text": "x"}},
            {"type": "section"},
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
            {"type": "actions", "elements": [button("a", "b" * 76), button("a")]},
            {"type": "actions", "elements": [button(f"b{i}") for i in range(26)]},
            {"type": "header", "text": {"type": "mrkdwn", "text": "not plain"}},
        ]
    )
    joined = "\n".join(errors)
    for pointer in (
        "/blocks/0/type",
        "/blocks/1]",
        "/blocks/2/text/text",
        "/blocks/3/fields",
        "/blocks/4/elements/0/text/text",
        "/blocks/4/elements/1/action_id",
        "/blocks/5/elements",
        "/blocks/6/text/type",
    ):
        assert pointer in joined, pointer
    good = [
        {"type": "header", "text": {"type": "plain_text", "text": "Sent"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*ok*"}, "accessory": button("x")},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "SM123"}]},
        {"type": "divider"},
    ]
    assert validate_blocks(good) == []


async def test_views_open_needs_a_fresh_unused_trigger(bot: FakeBot, slack_clock: FakeClock) -> None:
    """A trigger_id works once within 3 s; reused or late ones get expired_trigger_id."""
    async with running_slack(TOKEN, clock=slack_clock) as simulator:
        simulator.set_bot_url(bot.url)
        client = AsyncWebClient(token=TOKEN, base_url=simulator.api_url)
        triggers: list[str] = []

        async def remember(received: Received) -> web.Response:
            triggers.append(received.form["trigger_id"])
            return web.Response()

        bot.answer = remember
        await simulator.slash_command("send")
        await simulator.slash_command("send")
        opened = await client.views_open(trigger_id=triggers[0], view=modal())
        assert opened["view"]["id"].startswith("V") and opened["view"]["state"] == {"values": {}}
        assert opened["view"]["id"] in simulator.views
        with pytest.raises(SlackApiError) as reused:
            await client.views_open(trigger_id=triggers[0], view=modal())
        assert reused.value.response["error"] == "expired_trigger_id"
        slack_clock.now += 3.5
        with pytest.raises(SlackApiError) as late:
            await client.views_open(trigger_id=triggers[1], view=modal())
        assert late.value.response["error"] == "expired_trigger_id"
        with pytest.raises(SlackApiError) as unknown:
            await client.views_open(trigger_id="123.456.abc", view=modal())
        assert unknown.value.response["error"] == "invalid_trigger_id"


async def test_views_are_validated(sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient) -> None:
    """A title over 24 characters or input blocks without submit are invalid_arguments."""
    await sim.slash_command("send")
    trigger = bot.requests[-1].form["trigger_id"]
    with pytest.raises(SlackApiError) as err:
        await client.views_open(
            trigger_id=trigger, view=modal(title={"type": "plain_text", "text": "t" * 25})
        )
    assert err.value.response["error"] == "invalid_arguments"
    assert any("/view/title/text" in m for m in err.value.response["response_metadata"]["messages"])
    no_submit = modal()
    del no_submit["submit"]
    await sim.slash_command("send")
    with pytest.raises(SlackApiError):
        await client.views_open(trigger_id=bot.requests[-1].form["trigger_id"], view=no_submit)


# ------------------------------------------------------------------ faults


async def test_rate_limit_is_retried_by_slack_sdk(sim: SlackSimulator) -> None:
    """An injected 429 with Retry-After: 0 is retried by AsyncRateLimitErrorRetryHandler and succeeds."""
    sim.inject("chat.postMessage", status=429, retry_after=0)
    client = AsyncWebClient(
        token=TOKEN,
        base_url=sim.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    answer = await client.chat_postMessage(channel=GENERAL_ID, text="after the limit")
    assert answer["ok"] is True
    calls = sim.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[0].response == {"ok": False, "error": "ratelimited"}
    assert len(sim.messages(GENERAL_ID)) == 1


async def test_injected_errors_fail_without_applying(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """ok:false errors and 5xx answers are used up in order and store nothing."""
    sim.inject("chat.postMessage", error="channel_not_found")
    sim.inject("*", status=503)
    with pytest.raises(SlackApiError) as first:
        await client.chat_postMessage(channel=GENERAL_ID, text="a")
    assert first.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as second:
        await client.chat_postMessage(channel=GENERAL_ID, text="b")
    assert second.value.response.status_code == 503
    await client.chat_postMessage(channel=GENERAL_ID, text="c")
    assert [m["text"] for m in sim.messages(GENERAL_ID)] == ["c"]


async def test_manifest_scopes_are_enforced(tmp_path: Path) -> None:
    """With a manifest, a method whose scope the app lacks answers missing_scope."""
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(
        textwrap.dedent(
            """\
            display_information:
              name: Twilio SMS
            features:
              bot_user:
                display_name: twilio
              slash_commands:
                - command: /twilio
                  description: Run Twilio from Slack
                  usage_hint: "send TO BODY | help"
                  should_escape: false
            oauth_config:
              scopes:
                bot:
                  - commands
                  - chat:write
                  - users:read  # who is admin
            """
        )
    )
    info = read_manifest(manifest)
    assert info.app_name == "Twilio SMS" and info.commands[0]["usage_hint"] == "send TO BODY | help"
    simulator = SlackSimulator(signing_secret=SLACK_SECRET, bot_token=TOKEN, manifest_path=manifest)
    await simulator.start()
    try:
        client = AsyncWebClient(token=TOKEN, base_url=simulator.api_url)
        assert (await client.users_info(user=ADMIN_ID))["ok"]
        with pytest.raises(SlackApiError) as err:
            await client.conversations_info(channel=GENERAL_ID)
        assert err.value.response["error"] == "missing_scope"
        assert err.value.response["needed"] == "channels:read,groups:read"
    finally:
        await simulator.stop()


def test_yaml_subset_reads_nested_lists() -> None:
    """The manifest reader handles mappings inside lists, quotes, comments and flow lists."""
    data = parse_yaml_subset(
        "a:\n  - x: 1\n    y: 'it''s'\n  - plain\nb: [one, two]  # note\nc:\n- d\n- e\nf: 'a # b'\n"
    )
    assert data == {"a": [{"x": 1, "y": "it's"}, "plain"], "b": ["one", "two"], "c": ["d", "e"], "f": "a # b"}


# ------------------------------------------------------------------ acting as the Slack client


async def test_slash_command_is_a_signed_form_like_slacks(sim: SlackSimulator, bot: FakeBot) -> None:
    """The command arrives signed, form-encoded, with every field Slack sends and text HTML-escaped."""

    async def ack(received: Received) -> web.Response:
        return web.json_response({"text": "Working…"})

    bot.answer = ack
    response = await sim.slash_command("send +15551234567 a<b & c", user_id=MEMBER_ID, channel_id=PRIVATE_ID)
    assert response.status == 200 and response.json() == {"text": "Working…"}
    (received,) = bot.requests
    assert received.signature_ok
    assert received.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    form = received.form
    assert form["command"] == "/twilio" and form["text"] == "send +15551234567 a&lt;b &amp; c"
    assert form["user_id"] == MEMBER_ID and form["user_name"] == "max" and form["channel_id"] == PRIVATE_ID
    assert form["channel_name"] == "privategroup" and form["team_id"] == sim.team_id
    assert form["is_enterprise_install"] == "false" and form["api_app_id"]
    assert form["response_url"].startswith(f"{sim.url}/response/") and form["trigger_id"]
    (shown,) = sim.ephemerals
    assert shown["user"] == MEMBER_ID and shown["text"] == "Working…" and shown["channel"] == PRIVATE_ID


async def test_a_failing_bot_is_shown_as_slack_shows_it(sim: SlackSimulator, bot: FakeBot) -> None:
    """A 500 from the bot becomes Slack's 'failed with the error' notice and a recorded problem."""

    async def boom(received: Received) -> web.Response:
        return web.Response(status=500)

    bot.answer = boom
    response = await sim.slash_command("help")
    assert response.status == 500
    assert "failed with the error" in sim.ephemerals[0]["text"] and sim.ephemerals[0]["source"] == "slack"
    assert sim.problems


async def test_in_channel_ack_shows_command_and_answer_to_everyone(sim: SlackSimulator, bot: FakeBot) -> None:
    """An ack with response_type in_channel puts the user's command and the answer in the channel."""

    async def ack(received: Received) -> web.Response:
        return web.json_response({"response_type": "in_channel", "text": "Sent to +1 555 <b>"})

    bot.answer = ack
    await sim.slash_command("send +15551234567 hi & bye", channel_id=OPS_ID)
    command, answer = sim.messages(OPS_ID)
    assert command["user"] == ADMIN_ID and command["text"] == "/twilio send +15551234567 hi &amp; bye"
    assert answer["bot_id"] == "B0BOT" and answer["text"] == "Sent to +1 555 <b>"
    assert sim.ephemerals == []


async def test_click_sends_block_actions_for_the_stored_message(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient
) -> None:
    """A button click posts a signed block_actions payload carrying the message, response_url and action."""
    posted = await client.chat_postMessage(
        channel=OPS_ID,
        text="Scheduled SM1",
        blocks=[
            {
                "type": "actions",
                "block_id": "msg",
                "elements": [button("cancel_message", "Cancel", value="SM1", style="danger")],
            }
        ],
    )
    await sim.click(OPS_ID, posted["ts"], "cancel_message", user_id=MEMBER_ID)
    (received,) = bot.requests
    assert received.signature_ok and received.payload is not None
    payload = received.payload
    assert payload["type"] == "block_actions" and payload["user"]["id"] == MEMBER_ID
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": OPS_ID,
        "is_ephemeral": False,
    }
    assert payload["channel"]["id"] == OPS_ID and payload["message"]["ts"] == posted["ts"]
    (action,) = payload["actions"]
    assert action["action_id"] == "cancel_message" and action["block_id"] == "msg"
    assert action["value"] == "SM1" and action["type"] == "button" and action["text"]["text"] == "Cancel"
    assert payload["response_url"] and payload["trigger_id"]


async def test_response_url_posts_show_in_the_channel(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient
) -> None:
    """response_url: in_channel posts a message (even where the bot is no member), ephemeral stays private,
    replace_original edits the clicked message, and a sixth use is refused."""
    await sim.slash_command("list", channel_id=PRIVATE_ID)
    url = bot.requests[-1].form["response_url"]
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"response_type": "in_channel", "text": "3 messages"}) as resp:
            assert resp.status == 200
        async with session.post(url, json={"text": "only you"}) as resp:
            assert resp.status == 200
        assert [m["text"] for m in sim.messages(PRIVATE_ID)] == ["3 messages"]
        assert sim.ephemerals[-1]["text"] == "only you" and sim.ephemerals[-1]["user"] == ADMIN_ID
        for _ in range(3):
            async with session.post(url, json={"text": "again"}) as resp:
                assert resp.status == 200
        async with session.post(url, json={"text": "too many"}) as resp:
            assert resp.status == 404 and (await resp.json())["error"] == "used_url"

        posted = await client.chat_postMessage(
            channel=GENERAL_ID, text="card", blocks=[{"type": "actions", "elements": [button("go")]}]
        )
        await sim.click(GENERAL_ID, posted["ts"], "go")
        click_url = bot.requests[-1].payload["response_url"]  # type: ignore[index]
        async with session.post(click_url, json={"replace_original": True, "text": "Done"}) as resp:
            assert resp.status == 200
    assert sim.message(GENERAL_ID, posted["ts"])["text"] == "Done"
    assert "blocks" not in sim.message(GENERAL_ID, posted["ts"])
    assert len(sim.calls_to("response_url")) == 7


async def test_view_submission_errors_keep_the_modal_open(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient
) -> None:
    """The bot opens a modal from the command; field errors keep it open, an empty ack closes it."""

    view_id = await open_from_command(sim, bot, client, modal())

    async def reject(received: Received) -> web.Response:
        return web.json_response({"response_action": "errors", "errors": {"to": "Not a phone number."}})

    bot.answer = reject
    response = await sim.submit_view(
        view_id,
        {"to": {"value": {"value": "nope"}}, "when": {"value": {"selected_date_time": 1_900_000_000}}},
    )
    assert response.status == 200 and view_id in sim.views
    assert sim.view_errors[view_id] == {"to": "Not a phone number."}
    payload = bot.requests[-1].payload
    assert payload is not None and bot.requests[-1].signature_ok
    assert payload["type"] == "view_submission" and payload["view"]["id"] == view_id
    assert payload["view"]["callback_id"] == "send"
    assert json.loads(payload["view"]["private_metadata"]) == {"channel_id": GENERAL_ID}
    assert payload["view"]["state"]["values"] == {
        "to": {"value": {"type": "plain_text_input", "value": "nope"}},
        "when": {"value": {"type": "datetimepicker", "selected_date_time": 1_900_000_000}},
    }

    bot.answer = None
    await sim.submit_view(view_id, {"to": {"value": {"value": "+15551234567"}}})
    assert sim.views == {}
    assert bot.requests[-1].payload["view"]["state"]["values"]["when"]["value"]["selected_date_time"] is None  # type: ignore[index]


async def test_empty_required_field_never_reaches_the_bot(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient
) -> None:
    """Like Slack's client, an empty required input is flagged in the modal and nothing is sent."""

    view_id = await open_from_command(sim, bot, client, modal())
    response = await sim.submit_view(view_id, {})
    assert response.error == "client_validation" and response.status == 0
    assert sim.view_errors[view_id] == {"to": "Please complete this required field."}
    assert len(bot.requests) == 1


async def test_response_action_update_and_close_notifications(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient
) -> None:
    """response_action update keeps the view id; closing sends view_closed only with notify_on_close."""

    view_id = await open_from_command(sim, bot, client, modal(notify_on_close=True))
    old_hash = sim.views[view_id]["hash"]

    async def update(received: Received) -> web.Response:
        view = modal(notify_on_close=True, title={"type": "plain_text", "text": "Check and send"})
        return web.json_response({"response_action": "update", "view": view})

    bot.answer = update
    await sim.submit_view(view_id, {"to": {"value": {"value": "+1555"}}})
    assert sim.views[view_id]["title"]["text"] == "Check and send" and sim.views[view_id]["hash"] != old_hash
    bot.answer = None
    closed = await sim.close_view(view_id)
    assert closed is not None and closed.status == 200 and sim.views == {}
    payload = bot.requests[-1].payload
    assert payload is not None and payload["type"] == "view_closed" and payload["is_cleared"] is False


async def test_click_in_view_sends_the_view_with_its_state(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient
) -> None:
    """A button inside a modal sends block_actions with container type view and no response_url."""
    view = modal()
    view["blocks"].append({"type": "actions", "block_id": "tools", "elements": [button("preview")]})

    view_id = await open_from_command(sim, bot, client, view)
    bot.answer = None
    await sim.click_in_view(view_id, "preview", values={"to": {"value": {"value": "+1"}}})
    payload = bot.requests[-1].payload
    assert payload is not None and payload["container"] == {"type": "view", "view_id": view_id}
    assert payload["view"]["state"]["values"]["to"]["value"]["value"] == "+1"
    assert "response_url" not in payload and payload["actions"][0]["action_id"] == "preview"


async def test_no_answer_in_time_is_an_operation_timeout(sim: SlackSimulator, bot: FakeBot) -> None:
    """A bot that does not ack within ack_timeout gets Slack's operation_timeout."""
    release = asyncio.Event()

    async def hang(received: Received) -> web.Response:
        await release.wait()
        return web.Response()

    bot.answer = hang
    sim.ack_timeout = 0.2
    response = await sim.slash_command("help")
    release.set()
    assert response.error == "operation_timeout"
    assert 'failed with the error "operation_timeout"' in sim.ephemerals[-1]["text"]


# ------------------------------------------------------------------ the page's endpoints


async def test_page_state_and_live_events(sim: SlackSimulator, bot: FakeBot) -> None:
    """The page, its state and its event stream are served; /ui/command runs the command."""

    async def ack(received: Received) -> web.Response:
        return web.json_response({"text": "On it"})

    bot.answer = ack
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sim.url}/") as page:
            html = await page.text()
        assert page.status == 200 and 'id="composer"' in html and "/static/app.js" in html
        for asset in ("app.js", "app.css"):
            async with session.get(f"{sim.url}/static/{asset}") as resp:
                assert resp.status == 200
        async with session.get(f"{sim.url}/ui/state") as resp:
            state = await resp.json()
        assert [c["id"] for c in state["channels"]] == [GENERAL_ID, OPS_ID, PRIVATE_ID]
        assert state["subcommands"][0] == {
            "name": "send",
            "usage": "send TO BODY… [--from FROM]",
            "description": "",
        }
        assert state["commands"][0]["command"] == "/twilio"

        async with session.get(f"{sim.url}/events") as stream:
            assert await until(stream.content.readline(), what="the hello event") == b"event: hello\n"
            async with session.post(
                f"{sim.url}/ui/command",
                json={"text": "/twilio help", "channel_id": OPS_ID, "user_id": ADMIN_ID},
            ) as resp:
                assert (await resp.json())["ok"] is True
            kinds = []
            while "ephemeral" not in kinds:
                line = await until(stream.content.readline(), what="the next event on the page's stream")
                if line.startswith(b"event: "):
                    kinds.append(line[7:].strip().decode())
        assert kinds == ["echo", "ephemeral"]
        async with session.post(f"{sim.url}/ui/command", data="text=/twilio") as resp:
            assert resp.status == 415
    assert bot.requests[-1].form["channel_id"] == OPS_ID
    assert sim.ephemerals[-1]["text"] == "On it"

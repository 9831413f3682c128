"""The Slack simulator's Events API: signed event_callback envelopes for what people and the bot do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botproc import until
from sandbox_helpers import SLACK_SECRET, running_slack, serve
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack import (
    ADMIN_ID,
    ALL_EVENTS,
    BOT_ID,
    BOT_USER_ID,
    GENERAL_ID,
    MEMBER_ID,
    OPS_ID,
    PRIVATE_ID,
    SimFile,
    SlackSimulator,
)

TOKEN = "xoxb-events-token"
APP_TOKEN = "xapp-1-events"
ENVELOPE_FIELDS = {
    "token",
    "team_id",
    "context_team_id",
    "context_enterprise_id",
    "api_app_id",
    "event",
    "type",
    "event_id",
    "event_time",
    "authorizations",
    "is_ext_shared_channel",
    "event_context",
}


@dataclass
class Received:
    """One event request the fake bot got."""

    envelope: dict[str, Any]
    headers: dict[str, str]
    signature_ok: bool


@dataclass
class FakeBot:
    """Records events and checks their signature like Bolt; `answer` makes its reply (default 200)."""

    requests: list[Received] = field(default_factory=list)
    answer: Callable[[Received], Awaitable[web.Response]] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        """Record the event and answer."""
        body = await request.read()
        ok = SignatureVerifier(SLACK_SECRET).is_valid(
            body=body,
            timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
            signature=request.headers.get("X-Slack-Signature", ""),
        )
        received = Received(json.loads(body), dict(request.headers), ok)
        self.requests.append(received)
        return await self.answer(received) if self.answer else web.Response()

    def events(self) -> list[dict[str, Any]]:
        """The inner events received, retries included."""
        return [r.envelope["event"] for r in self.requests]


@pytest.fixture
async def sim() -> AsyncIterator[SlackSimulator]:
    async with running_slack(TOKEN, events=ALL_EVENTS, app_token=APP_TOKEN) as simulator:
        yield simulator


@pytest.fixture
async def bot(sim: SlackSimulator) -> AsyncIterator[FakeBot]:
    fake = FakeBot()
    async with serve({"/slack/events": fake.handle}) as base:
        sim.set_bot_url(f"{base}/slack/events")
        yield fake


@pytest.fixture
def client(sim: SlackSimulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=sim.api_url)


async def test_a_post_in_a_channel_sends_a_signed_message_event(sim: SlackSimulator, bot: FakeBot) -> None:
    """A person's message arrives as Slack's event_callback envelope, signed with the signing secret."""
    posted = await sim.post_message(GENERAL_ID, "hello <team>", user=MEMBER_ID)
    (received,) = bot.requests
    envelope = received.envelope
    assert received.signature_ok and received.headers["Content-Type"] == "application/json"
    assert set(envelope) == ENVELOPE_FIELDS
    assert (envelope["type"], envelope["team_id"], envelope["api_app_id"]) == (
        "event_callback",
        sim.team_id,
        "A0PLAYGRND",
    )
    assert envelope["event_id"].startswith("Ev")
    assert envelope["authorizations"][0]["user_id"] == BOT_USER_ID
    event = envelope["event"]
    assert (event["type"], event["channel"], event["channel_type"], event["user"]) == (
        "message",
        GENERAL_ID,
        "channel",
        MEMBER_ID,
    )
    assert event["text"] == "hello &lt;team&gt;" and event["ts"] == posted["ts"]
    assert "subtype" not in event and "bot_id" not in event
    assert sim.messages(GENERAL_ID)[-1]["ts"] == posted["ts"]


async def test_thread_reply_broadcast_and_files(sim: SlackSimulator, bot: FakeBot) -> None:
    """Replies carry thread_ts and parent_user_id; broadcasts and attachments carry their subtypes."""
    root = await sim.post_message(OPS_ID, "root", user=ADMIN_ID)
    reply = await sim.post_message(OPS_ID, "reply", user=MEMBER_ID, thread_ts=root["ts"])
    await sim.post_message(OPS_ID, "for all", user=MEMBER_ID, thread_ts=root["ts"], broadcast=True)
    await sim.post_message(OPS_ID, "a photo", thread_ts=root["ts"], files=[SimFile("cat.png", b"meow")])
    events = bot.events()
    assert (events[1]["thread_ts"], events[1]["parent_user_id"], events[1]["ts"]) == (
        root["ts"],
        ADMIN_ID,
        reply["ts"],
    )
    assert events[2]["subtype"] == "thread_broadcast" and events[2]["root"]["ts"] == root["ts"]
    assert events[3]["subtype"] == "file_share"
    (shared,) = events[3]["files"]
    assert (shared["name"], shared["mimetype"], shared["size"]) == ("cat.png", "image/png", 4)
    assert sim.message(OPS_ID, root["ts"])["reply_count"] == 3


async def test_edit_and_delete_send_their_subtypes(sim: SlackSimulator, bot: FakeBot) -> None:
    """An edit sends message_changed with both versions; a delete sends message_deleted."""
    posted = await sim.post_message(GENERAL_ID, "frist", user=MEMBER_ID)
    await sim.edit_message(GENERAL_ID, posted["ts"], "first")
    await sim.delete_message(GENERAL_ID, posted["ts"])
    _, changed, deleted = bot.events()
    assert changed["subtype"] == "message_changed" and changed["hidden"] is True
    assert (changed["message"]["text"], changed["previous_message"]["text"]) == ("first", "frist")
    assert changed["message"]["edited"]["user"] == MEMBER_ID
    assert (deleted["subtype"], deleted["deleted_ts"]) == ("message_deleted", posted["ts"])
    assert all(m["ts"] != posted["ts"] for m in sim.messages(GENERAL_ID))


async def test_the_bots_own_posts_come_back_with_its_bot_id(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient
) -> None:
    """chat.postMessage and chat.update by the bot raise events too, marked with its bot_id."""
    posted = await client.chat_postMessage(channel=GENERAL_ID, text="a card")
    await client.chat_update(channel=GENERAL_ID, ts=posted["ts"], text="a card, updated")
    await sim.settle_events()
    message, changed = bot.events()
    assert (message["bot_id"], message["user"], message["ts"]) == (BOT_ID, BOT_USER_ID, posted["ts"])
    assert changed["subtype"] == "message_changed" and changed["message"]["bot_id"] == BOT_ID


async def test_no_event_where_the_bot_is_not_or_the_app_does_not_subscribe(
    sim: SlackSimulator, bot: FakeBot
) -> None:
    """A private channel without the bot, or an event type the app does not subscribe to: nothing sent."""
    await sim.post_message(PRIVATE_ID, "secret", user=MEMBER_ID)
    sim.bot_events = frozenset({"message.groups"})
    await sim.post_message(GENERAL_ID, "public", user=MEMBER_ID)
    assert bot.requests == []
    assert [s["why"] for s in sim.skipped_events] == [
        "the bot is not a member of the channel",
        "the app does not subscribe to message.channels",
    ]


async def test_a_slow_bot_gets_retries_with_slacks_headers(sim: SlackSimulator, bot: FakeBot) -> None:
    """No 200 within ack_timeout: the same event_id again, with X-Slack-Retry-Num and Retry-Reason."""
    sim.ack_timeout = 0.2
    release = asyncio.Event()

    async def slow_then_error(received: Received) -> web.Response:
        if len(bot.requests) == 1:
            await release.wait()  # never answers in time
        if len(bot.requests) == 2:
            return web.Response(status=404)
        return web.Response()

    bot.answer = slow_then_error
    try:
        await sim.post_message(GENERAL_ID, "anyone?", user=MEMBER_ID)
    finally:
        release.set()
    assert len({r.envelope["event_id"] for r in bot.requests}) == 1
    retries = [
        (r.headers.get("X-Slack-Retry-Num"), r.headers.get("X-Slack-Retry-Reason")) for r in bot.requests
    ]
    assert retries == [(None, None), ("1", "http_timeout"), ("2", "http_error")]
    assert all(r.signature_ok for r in bot.requests)
    assert len(sim.problems) == 2


async def test_four_failures_and_slack_gives_up(sim: SlackSimulator, bot: FakeBot) -> None:
    """An event that always fails is tried four times in all."""

    async def fail(received: Received) -> web.Response:
        return web.Response(status=500)

    bot.answer = fail
    await sim.post_message(GENERAL_ID, "hello", user=MEMBER_ID)
    assert [r.headers.get("X-Slack-Retry-Num") for r in bot.requests] == [None, "1", "2", "3"]


async def test_a_forced_retry_repeats_an_acknowledged_event(sim: SlackSimulator, bot: FakeBot) -> None:
    """force_event_retry: the next event is sent again though the bot answered 200."""
    sim.force_event_retry(reason="http_timeout")
    await sim.post_message(GENERAL_ID, "twice", user=MEMBER_ID)
    await sim.post_message(GENERAL_ID, "once", user=MEMBER_ID)
    assert [e["text"] for e in bot.events()] == ["twice", "twice", "once"]
    assert bot.requests[1].headers["X-Slack-Retry-Num"] == "1"
    assert len(sim.events_sent("message")) == 2 and sim.problems == []
    with pytest.raises(ValueError):
        sim.force_event_retry(reason="bored")


async def test_events_over_socket_mode_carry_retry_fields(sim: SlackSimulator) -> None:
    """With Socket Mode the event goes as an events_api envelope, acked by Bolt's handler."""
    sim.socket_mode = True
    app = AsyncApp(token=TOKEN, client=AsyncWebClient(token=TOKEN, base_url=sim.api_url))
    seen: list[dict[str, Any]] = []

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen.append(event)

    handler = AsyncSocketModeHandler(
        app, APP_TOKEN, web_client=AsyncWebClient(token=APP_TOKEN, base_url=sim.api_url)
    )
    await handler.connect_async()
    try:
        await until(lambda: sim.socket_connected, timeout=10, what="the socket connection")
        sim.force_event_retry()
        await sim.post_message(GENERAL_ID, "over the socket", user=MEMBER_ID)
    finally:
        await handler.close_async()
    deliveries = sim.event_deliveries
    assert [d.transport for d in deliveries] == ["socket", "socket"]
    envelopes = [json.loads(d.body) for d in deliveries]
    assert [(e["type"], e["retry_attempt"], e["retry_reason"]) for e in envelopes] == [
        ("events_api", 0, ""),
        ("events_api", 1, "http_timeout"),
    ]
    assert all(d.response.status == 200 for d in deliveries)
    assert seen and seen[0]["text"] == "over the socket"


async def test_app_home_opened_carries_the_published_view(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient
) -> None:
    """open_app_home sends app_home_opened; once the bot published a view, the event carries it."""
    await sim.open_app_home(MEMBER_ID)
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]}
    await client.views_publish(user_id=MEMBER_ID, view=home)
    await sim.open_app_home(MEMBER_ID)
    first, second = bot.events()
    assert (first["type"], first["user"], first["tab"], "view" in first) == (
        "app_home_opened",
        MEMBER_ID,
        "home",
        False,
    )
    assert second["view"]["blocks"][0]["text"]["text"] == "Hi"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("revoked_first", ["tokens_revoked", "app_uninstalled"]),
        ("uninstalled_first", ["app_uninstalled", "tokens_revoked"]),
    ],
)
async def test_uninstall_sends_both_events_and_kills_the_token(
    sim: SlackSimulator, bot: FakeBot, client: AsyncWebClient, order: Any, expected: list[str]
) -> None:
    """uninstall_app revokes the team's tokens and sends tokens_revoked and app_uninstalled."""
    await sim.uninstall_app(events_order=order)
    assert [e["type"] for e in bot.events()] == expected
    revoked = next(e for e in bot.events() if e["type"] == "tokens_revoked")
    assert revoked["tokens"] == {"oauth": [], "bot": [BOT_USER_ID]}
    with pytest.raises(SlackApiError) as refused:
        await client.auth_test()
    assert refused.value.response["error"] == "token_revoked"


async def test_no_bot_url_means_no_event(sim: SlackSimulator) -> None:
    """Without a bot URL (and no socket) the event is skipped, and says why."""
    await sim.post_message(GENERAL_ID, "hello", user=MEMBER_ID)
    assert sim.event_deliveries == [] and "no bot" in sim.skipped_events[0]["why"]


async def test_page_typed_message_in_a_thread_reaches_the_bot(sim: SlackSimulator, bot: FakeBot) -> None:
    """The playground's text box posts through post_message, so a typed thread reply is an event."""
    root = await sim.post_message(GENERAL_ID, "root", user=ADMIN_ID)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{sim.url}/ui/command",
            json={
                "text": "typed reply",
                "channel_id": GENERAL_ID,
                "user_id": MEMBER_ID,
                "thread_ts": root["ts"],
            },
        ) as resp,
    ):
        assert (await resp.json())["ok"] is True
    assert bot.events()[-1]["thread_ts"] == root["ts"] and bot.events()[-1]["text"] == "typed reply"


async def test_page_opens_the_app_home_and_removes_the_app(sim: SlackSimulator, bot: FakeBot) -> None:
    """/ui/app_home and /ui/uninstall raise the same events as the Python methods."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.url}/ui/app_home", json={"user_id": MEMBER_ID}) as resp:
            assert (await resp.json())["ok"] is True
        async with http.post(f"{sim.url}/ui/uninstall", json={"team_id": "T404"}) as resp:
            assert resp.status == 400
        async with http.post(f"{sim.url}/ui/uninstall", json={}) as resp:
            assert (await resp.json())["ok"] is True
    assert [e["type"] for e in bot.events()] == ["app_home_opened", "tokens_revoked", "app_uninstalled"]
    assert not sim.installed()


async def test_page_clicks_a_button_in_the_published_home_view(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """A click in a Home tab reaches the bot as block_actions on that view; with no Home, a clear 400."""
    payloads: list[dict[str, Any]] = []

    async def interactions(request: web.Request) -> web.Response:
        form = await request.post()
        payloads.append(json.loads(str(form["payload"])))
        return web.Response()

    button = {
        "type": "button",
        "action_id": "go",
        "value": "v1",
        "text": {"type": "plain_text", "text": "Go"},
    }
    home = {"type": "home", "blocks": [{"type": "actions", "block_id": "b", "elements": [button]}]}
    async with serve({"/slack/events": interactions}) as base, aiohttp.ClientSession() as http:
        sim.set_bot_url(f"{base}/slack/events")
        click = {"home": True, "user_id": MEMBER_ID, "action_id": "go", "block_id": "b", "value": "v1"}
        async with http.post(f"{sim.url}/ui/click", json=click) as resp:
            assert resp.status == 400
            assert "no Home view published" in (await resp.json())["error"]
        published = await client.views_publish(user_id=MEMBER_ID, view=home)
        async with http.post(f"{sim.url}/ui/click", json=click) as resp:
            assert (await resp.json())["ok"] is True
    (payload,) = payloads
    assert payload["type"] == "block_actions" and payload["user"]["id"] == MEMBER_ID
    assert payload["container"] == {"type": "view", "view_id": published["view"]["id"]}
    assert payload["view"]["type"] == "home" and payload["actions"][0]["value"] == "v1"

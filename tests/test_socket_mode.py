"""`python -m bot socket` end to end: the bot connects to the simulated Slack over Socket Mode.

The simulators run in the test's loop; the bot is a real process that asks `apps.connections.open` for a
WebSocket URL with its app token, gets commands as envelopes and acks them over the socket.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from botproc import (
    APP_TOKEN,
    BotProcess,
    FarEnds,
    bot_environment,
    spawn_bot,
    store_account,
    store_routed_account,
    unused_port,
)
from twilio.request_validator import RequestValidator
from waiting import until

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, OPS_ID
from bot.sandbox.twilio import DEFAULT_FROM, SANDBOX_ACCOUNT_SID


@contextlib.asynccontextmanager
async def socket_bot(
    ends: FarEnds,
    tmp_path: Path,
    *,
    routed: bool = False,
    installed: bool = False,
    listen: bool = False,
    public: bool = False,
    **extra: str,
) -> AsyncIterator[BotProcess]:
    """Run `python -m bot socket` against `ends`.

    Its new database holds the sandbox account (`routed`: its number routed to #ops; `installed`: the
    team's OAuth installation too). `listen`: it also serves HTTP on a free loopback port (`bot.url`),
    `public` with PUBLIC_URL set to that address; a port taken between choosing and binding it is
    chosen again. SIGTERM on the way out if it still runs; the test checks the exit.
    """
    db_path = tmp_path / "bot.db"
    if routed:
        await store_routed_account(ends, db_path)
    else:
        await store_account(ends, db_path, installed=installed)
    for attempt in range(3):
        port = unused_port() if listen or public else 0
        url = f"http://127.0.0.1:{port}" if port else ""
        listening = {"HOST": "127.0.0.1", "PORT": str(port)} if port else {}
        if public:
            listening["PUBLIC_URL"] = url
        environment = bot_environment(ends, db_path, SLACK_APP_TOKEN=APP_TOKEN, **listening, **extra)
        bot = await spawn_bot("socket", environment, db_path.parent / f"socket-bot-{attempt}.log", url)
        if port:
            await until(_up_or_exited(bot, port), timeout=20, what="the bot's port")
            taken = "address already in use" in bot.log().lower()
            if bot.proc.returncode is not None and taken and attempt < 2:
                continue
        break
    try:
        yield bot
    finally:
        if bot.proc.returncode is None:
            bot.terminate()


async def until_connected(ends: FarEnds, bot: BotProcess) -> None:
    """Wait for the bot's Socket Mode connection; fail with its log if it exits instead."""
    await until(
        lambda: ends.slack.socket_connected or bot.proc.returncode is not None,
        timeout=20,
        what="the bot's Socket Mode connection",
    )
    assert ends.slack.socket_connected, f"the bot exited with {bot.proc.returncode}:\n{bot.log()[-3000:]}"


async def test_connections_open_takes_only_the_app_token_and_commands_need_a_socket(
    socket_far_ends: FarEnds,
) -> None:
    """The app token gets a one-use ws:// URL; other tokens are refused; no connection: dispatch_failed."""
    ends = socket_far_ends
    url = f"{ends.slack.api_url}apps.connections.open"
    async with aiohttp.ClientSession() as session:
        answers = []
        for token in (APP_TOKEN, ends.bot_token, "xapp-wrong"):
            async with session.post(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                answers.append(await resp.json())
        ok, bot, wrong = answers
        assert ok["ok"] and ok["url"].startswith("ws://127.0.0.1:")
        assert bot == {"ok": False, "error": "not_allowed_token_type"}
        assert wrong == {"ok": False, "error": "invalid_auth"}
        async with session.ws_connect(ok["url"]) as ws:
            hello = await until(ws.receive_json(), what="the socket's hello")
            assert hello["type"] == "hello"
            assert ends.slack.socket_connected
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(ok["url"])  # each URL is good for one connection
    await until(lambda: not ends.slack.socket_connected, what="the socket to close")
    resp = await ends.slack.slash_command("help")
    assert resp.error == "dispatch_failed"


@pytest.mark.slow
async def test_a_command_over_socket_mode_is_acked_on_the_socket_and_sends_once(
    socket_far_ends: FarEnds, tmp_path: Path
) -> None:
    """Connect, `/twilio send` as an envelope, ack back over the socket, one create, one card; SIGTERM → 0."""
    ends = socket_far_ends
    async with socket_bot(ends, tmp_path) as bot:
        await until_connected(ends, bot)
        assert [c.args for c in ends.slack.calls_to("apps.connections.open")] == [{}]
        assert ends.slack.calls_to("apps.connections.open")[0].ok

        # A mistake is answered in the ack itself: its text comes back over the socket, shown as an ephemeral.
        wrong = await ends.slack.slash_command("send not-a-number hello")
        assert wrong.error is None and wrong.status == 200, (wrong, bot.log()[-3000:])
        ack = ends.slack.socket_acks[0]
        assert ack["payload"]["text"] and json.loads(wrong.body) == ack["payload"]
        (shown,) = ends.slack.ephemerals
        assert (shown["source"], shown["user"], shown["channel"]) == ("ack", ADMIN_ID, GENERAL_ID)

        resp = await ends.slack.slash_command("send +15551234567 hello over socket")

        assert resp.error is None and resp.status == 200, (resp, bot.log()[-3000:])
        # The commands only: the bot's own posts also come back as (subscribed) message events.
        first, delivery = [d for d in ends.slack.deliveries if d.kind == "slash_command"]
        assert first.transport == delivery.transport == "socket"
        envelope = json.loads(delivery.body)
        assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"] is True
        assert envelope["payload"]["text"] == "send +15551234567 hello over socket"
        commands = {json.loads(d.body)["envelope_id"] for d in (first, delivery)}
        command_acks = [a for a in ends.slack.socket_acks if a["envelope_id"] in commands]
        ack = command_acks[-1]
        assert len(command_acks) == 2 and ack["envelope_id"] == envelope["envelope_id"]
        assert resp.body == (json.dumps(ack["payload"]) if ack.get("payload") else "")

        await until(lambda: len(ends.cards()) >= 1, timeout=10, what="the card in #general")
    code = await bot.wait(timeout=15)
    log = bot.log()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert len(ends.twilio.creates()) == 1
    cards = ends.cards()
    assert len(cards) == 1, [c.get("text") for c in cards]
    assert "+15551234567" in json.dumps(cards[0])
    assert not ends.slack.problems
    assert not ends.slack.socket_connected


@pytest.mark.slow
async def test_socket_mode_takes_twilio_texts_when_public_url_is_set(
    socket_far_ends: FarEnds, tmp_path: Path
) -> None:
    """With PUBLIC_URL and PORT, the Socket Mode bot also listens for Twilio: a text opens its thread, and a
    reply in it, delivered as an event over the socket, is sent once."""
    ends = socket_far_ends
    async with socket_bot(ends, tmp_path, routed=True, public=True) as bot:
        public = bot.url
        form = {
            "MessageSid": "SM" + "5" * 32,
            "AccountSid": SANDBOX_ACCOUNT_SID,
            "From": "+15550001111",
            "To": DEFAULT_FROM,
            "Body": "hello over socket mode",
        }
        url = f"{public}/twilio/inbound"
        signature = RequestValidator(ends.twilio_token).compute_signature(url, form)
        headers = {"X-Twilio-Signature": signature}
        async with aiohttp.ClientSession() as session, session.post(url, data=form, headers=headers) as resp:
            assert resp.status == 200, (await resp.text(), bot.log()[-3000:])
        await until(lambda: len(ends.cards(OPS_ID)) >= 2, timeout=10, what="the root card and the text")
        assert "hello over socket mode" in json.dumps(ends.cards(OPS_ID)[1])
        # A reply in the thread reaches the bot as a message event over the socket, and goes out once.
        root_ts = ends.cards(OPS_ID)[0]["ts"]
        await ends.slack.post_message(OPS_ID, "answered over the socket", user=ADMIN_ID, thread_ts=root_ts)
        await until(lambda: len(ends.twilio.creates()) >= 1, timeout=10, what="the reply's create")
        (create,) = ends.twilio.creates()
        assert dict(create.form)["Body"] == "answered over the socket"
    assert await bot.wait(timeout=15) == 0, bot.log()[-3000:]


@pytest.mark.slow
async def test_oauth_mode_over_socket_mode_serves_the_install_pages_and_installed_teams(
    socket_far_ends: FarEnds, tmp_path: Path
) -> None:
    """OAuth + Socket Mode: commands of an installed team work over the socket; /slack/install is on HTTP."""
    ends = socket_far_ends
    async with socket_bot(
        ends,
        tmp_path,
        installed=True,
        listen=True,
        SLACK_BOT_TOKEN="",
        SLACK_CLIENT_ID="1111.2222",
        SLACK_CLIENT_SECRET="socket-oauth-client-secret",
        SLACK_SIGNING_SECRET=ends.signing_secret,
    ) as bot:
        await until_connected(ends, bot)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{bot.url}/slack/install") as page,
        ):
            assert page.status == 200 and "oauth/v2/authorize" in await page.text()
        resp = await ends.slack.slash_command("send +15551234567 hello from an installed team")
        assert resp.error is None and resp.status == 200, (resp, bot.log()[-3000:])
        await until(lambda: len(ends.cards()) >= 1, timeout=10, what="the card in #general")
    assert await bot.wait(timeout=15) == 0, bot.log()[-3000:]
    assert "Traceback" not in bot.log()
    assert len(ends.twilio.creates()) == 1


def _up_or_exited(bot: BotProcess, port: int) -> Callable[[], bool]:
    """Whether the bot listens on `port` yet, or has exited."""
    return lambda: _listening(port) or bot.proc.returncode is not None


def _listening(port: int) -> bool:
    """Whether something accepts connections on the loopback port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False

"""The Twilio simulator's status callbacks: Twilio's form, signed as Twilio signs, on the status clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botproc import unused_port
from sandbox_helpers import ACCOUNT, MESSAGES, NUMBER, SERVICE, START, TO, TOKEN, running, serve
from twilio.request_validator import RequestValidator
from waiting import until

from bot.sandbox.twilio import (
    DELIVERED_AFTER,
    SENT_AFTER,
    CallbackFault,
    SimClock,
    TwilioSimulator,
    WebhookPolicy,
)

CALLBACK_FIELDS = {
    "MessageSid",
    "SmsSid",
    "AccountSid",
    "From",
    "To",
    "MessageStatus",
    "SmsStatus",
    "ApiVersion",
}


@dataclass
class Hook:
    """One request the fake bot received."""

    url: str
    form: dict[str, str]
    signature: str
    headers: dict[str, str]


@dataclass
class FakeBot:
    """An aiohttp app on port 0 that records webhooks; `answer` makes its reply."""

    hooks: list[Hook] = field(default_factory=list)
    answer: Callable[[web.Request], Awaitable[web.Response]] | None = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        """Record the request and answer it."""
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        signature = request.headers.get("X-Twilio-Signature", "")
        self.hooks.append(Hook(str(request.url), form, signature, dict(request.headers)))
        if self.answer is not None:
            return await self.answer(request)
        return web.Response(status=204)

    def statuses(self, sid: str | None = None) -> list[str]:
        """MessageStatus of every callback received (for one message)."""
        return [h.form["MessageStatus"] for h in self.hooks if sid in (None, h.form.get("MessageSid"))]


@pytest.fixture
async def sim(clock: SimClock) -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator(clock)
    simulator.add_account(ACCOUNT, TOKEN, numbers=[NUMBER], services=[SERVICE])
    async with running(simulator):
        yield simulator


@pytest.fixture
async def bot() -> AsyncIterator[FakeBot]:
    fake = FakeBot()
    async with serve({"/twilio/status": fake.handle}) as base:
        fake.url = f"{base}/twilio/status"
        yield fake


AUTH = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT, TOKEN)}


async def create(sim: TwilioSimulator, **form: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(sim.url, headers=AUTH) as http,
        http.post(MESSAGES, data={"To": TO, "From": NUMBER, "Body": "hi", **form}) as resp,
    ):
        body: dict[str, Any] = await resp.json()
        assert resp.status == 201, body
        return body


async def advance(sim: TwilioSimulator, clock: SimClock, delta: timedelta) -> None:
    clock.advance(delta)
    await sim.settle_callbacks()


def valid(hook: Hook, token: str = TOKEN) -> bool:
    return bool(RequestValidator(token).validate(hook.url, hook.form, hook.signature))


async def test_callbacks_follow_the_clock_signed_like_twilio(
    sim: TwilioSimulator, clock: SimClock, bot: FakeBot
) -> None:
    """queued at once, sent and delivered as the clock passes them, each signed with the account's token."""
    message = await create(sim, StatusCallback=bot.url)
    await sim.settle_callbacks()
    assert bot.statuses() == ["queued"]
    await advance(sim, clock, SENT_AFTER)
    await advance(sim, clock, DELIVERED_AFTER - SENT_AFTER)
    assert bot.statuses() == ["queued", "sent", "delivered"]
    for hook in bot.hooks:
        assert set(hook.form) == CALLBACK_FIELDS
        assert hook.form["MessageSid"] == hook.form["SmsSid"] == message["sid"]
        assert hook.form["MessageStatus"] == hook.form["SmsStatus"]
        assert (hook.form["AccountSid"], hook.form["From"], hook.form["To"]) == (ACCOUNT, NUMBER, TO)
        assert hook.form["ApiVersion"] == "2010-04-01"
        assert valid(hook) and not valid(hook, "another-token")
    assert [(w.message_status, w.status) for w in sim.status_callbacks] == [
        ("queued", 204),
        ("sent", 204),
        ("delivered", 204),
    ]


async def test_nothing_is_called_back_without_status_callback(
    sim: TwilioSimulator, clock: SimClock, bot: FakeBot
) -> None:
    """A create without StatusCallback makes no callback, however far the clock goes."""
    await create(sim)
    await advance(sim, clock, timedelta(minutes=5))
    assert bot.hooks == [] and sim.status_callbacks == []


async def test_undelivered_number_reports_error_code_30003(
    sim: TwilioSimulator, clock: SimClock, bot: FakeBot
) -> None:
    """A To ending in 0666 ends undelivered, with ErrorCode 30003 in that callback only."""
    await create(sim, To="+15551230666", StatusCallback=bot.url)
    await advance(sim, clock, timedelta(seconds=10))
    assert bot.statuses() == ["queued", "sent", "undelivered"]
    assert "ErrorCode" not in bot.hooks[1].form
    assert bot.hooks[-1].form["ErrorCode"] == "30003"


async def test_service_message_skips_accepted_and_names_its_service(
    sim: TwilioSimulator, clock: SimClock, bot: FakeBot
) -> None:
    """Through a Messaging Service: no callback for accepted; each carries MessagingServiceSid."""
    message = await create(sim, From="", MessagingServiceSid=SERVICE, StatusCallback=bot.url)
    assert message["status"] == "accepted"
    await sim.settle_callbacks()
    assert bot.hooks == []
    await advance(sim, clock, timedelta(seconds=10))
    assert bot.statuses() == ["queued", "sent", "delivered"]
    assert {h.form["MessagingServiceSid"] for h in bot.hooks} == {SERVICE}


async def test_scheduled_message_calls_back_then_at_send_time(
    sim: TwilioSimulator, clock: SimClock, bot: FakeBot
) -> None:
    """A scheduled message reports scheduled at once, then queued, sent, delivered from SendAt."""
    send_at = START + timedelta(hours=1)
    await create(
        sim,
        From="",
        MessagingServiceSid=SERVICE,
        ScheduleType="fixed",
        SendAt=send_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        StatusCallback=bot.url,
    )
    await advance(sim, clock, timedelta(minutes=59))
    assert bot.statuses() == ["scheduled"]
    await advance(sim, clock, timedelta(minutes=1))
    assert bot.statuses() == ["scheduled", "queued"]
    await advance(sim, clock, DELIVERED_AFTER)
    assert bot.statuses() == ["scheduled", "queued", "sent", "delivered"]


async def test_cancel_calls_back_canceled(sim: TwilioSimulator, clock: SimClock, bot: FakeBot) -> None:
    """Cancelling a scheduled message reports canceled, and nothing follows at its old SendAt."""
    send_at = (START + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = await create(
        sim,
        From="",
        MessagingServiceSid=SERVICE,
        ScheduleType="fixed",
        SendAt=send_at,
        StatusCallback=bot.url,
    )
    path = f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{message['sid']}.json"
    async with (
        aiohttp.ClientSession(sim.url, headers=AUTH) as http,
        http.post(path, data={"Status": "canceled"}) as r,
    ):
        assert r.status == 200
    await sim.settle_callbacks()
    await advance(sim, clock, timedelta(hours=2))
    assert bot.statuses() == ["scheduled", "canceled"]


async def test_signature_covers_query_and_port_but_not_the_fragment(
    sim: TwilioSimulator, clock: SimClock, bot: FakeBot
) -> None:
    """A callback URL with a query and connection overrides: the fragment is neither sent nor signed."""
    await create(sim, StatusCallback=f"{bot.url}?card=C1&team=T1#rc=0&rp=ct")
    await sim.settle_callbacks()
    (hook,) = bot.hooks
    assert hook.url == f"{bot.url}?card=C1&team=T1"
    assert valid(hook)


async def test_connection_failure_is_retried_http_error_is_not(
    sim: TwilioSimulator, clock: SimClock, bot: FakeBot
) -> None:
    """A refused connection is tried again (rc=1 by default); a 500 from the bot is not."""
    closed = f"http://127.0.0.1:{unused_port()}/twilio/status"
    await create(sim, StatusCallback=closed)
    await create(sim, StatusCallback=f"{closed}#rc=3")

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500)

    bot.answer = fail
    await create(sim, StatusCallback=bot.url)
    await sim.settle_callbacks()
    attempts = [[(a.status, a.failure) for a in w.attempts] for w in sim.status_callbacks]
    assert sorted(attempts, key=len) == [
        [(500, "5xx")],
        [(None, "ct"), (None, "ct")],
        [(None, "ct")] * 4,
    ]


async def test_a_slow_bot_is_not_retried(sim: TwilioSimulator, clock: SimClock, bot: FakeBot) -> None:
    """A callback the bot does not answer in time is given up after one try (status callbacks retry on ct)."""
    sim.callback_policy = WebhookPolicy(read_timeout=0.2, total_timeout=5)
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    bot.answer = hang
    try:
        await create(sim, StatusCallback=bot.url)
        async with asyncio.timeout(5):
            await sim.settle_callbacks()
    finally:
        release.set()
    (callback,) = sim.status_callbacks
    assert [(a.status, a.failure) for a in callback.attempts] == [(None, "rt")]


async def test_fault_late_delivers_sent_after_delivered(
    sim: TwilioSimulator, clock: SimClock, bot: FakeBot
) -> None:
    """A late fault holds a callback back until the message's next one has gone out."""
    sim.callback_faults.inject(CallbackFault("late", status="sent"))
    await create(sim, StatusCallback=bot.url)
    await advance(sim, clock, timedelta(seconds=10))
    assert bot.statuses() == ["queued", "delivered", "sent"]
    assert [w.fault for w in sim.status_callbacks] == [None, None, "late"]


async def test_fault_duplicate_and_drop(sim: TwilioSimulator, clock: SimClock, bot: FakeBot) -> None:
    """duplicate sends a callback twice; drop never sends it but records it as dropped."""
    first = await create(sim, StatusCallback=bot.url)
    await sim.settle_callbacks()
    sim.callback_faults.inject(CallbackFault("duplicate", message_sid=first["sid"], status="delivered"))
    sim.callback_faults.inject(CallbackFault("drop", status="queued"))  # queued goes out with the create
    second = await create(sim, StatusCallback=bot.url)
    sim.callback_faults.inject(CallbackFault("drop", message_sid=second["sid"], status="sent"))
    await advance(sim, clock, timedelta(seconds=10))
    assert bot.statuses(first["sid"]) == ["queued", "sent", "delivered", "delivered"]
    assert bot.statuses(second["sid"]) == ["delivered"]
    dropped = [w for w in sim.status_callbacks if w.fault == "drop"]
    assert [(w.message_status, w.attempts, w.note is not None) for w in dropped] == [
        ("queued", [], True),
        ("sent", [], True),
    ]
    assert sim.callback_faults.copies() == []


async def test_hold_then_flush_in_reverse(sim: TwilioSimulator, clock: SimClock, bot: FakeBot) -> None:
    """Held callbacks wait; a reverse flush sends them newest first, one after another."""
    sim.hold_callbacks()
    await create(sim, StatusCallback=bot.url)
    await advance(sim, clock, timedelta(seconds=10))
    assert bot.hooks == [] and sim.held_callbacks == 3
    assert await sim.flush_callbacks("reverse") == 3
    assert bot.statuses() == ["delivered", "sent", "queued"]
    await create(sim, StatusCallback=bot.url)
    await sim.settle_callbacks()
    assert sim.held_callbacks == 1, "holding goes on until released"
    assert await sim.release_callbacks() == 1
    await advance(sim, clock, timedelta(seconds=10))
    assert len(bot.hooks) == 6


async def test_real_time_clock_calls_back_when_the_time_comes(bot: FakeBot) -> None:
    """With a clock that follows real time, callbacks go out on their own as time passes."""
    clock = SimClock(START, follow_real_time=True)
    async with TwilioSimulator(clock) as simulator:
        simulator.add_account(ACCOUNT, TOKEN, numbers=[NUMBER])
        await create(simulator, StatusCallback=bot.url)
        clock.advance(DELIVERED_AFTER - timedelta(milliseconds=300))
        await until(lambda: "delivered" in bot.statuses(), timeout=5, what="the delivered callback")
    assert bot.statuses() == ["queued", "sent", "delivered"]


async def test_control_routes_drive_callbacks(sim: TwilioSimulator, clock: SimClock, bot: FakeBot) -> None:
    """/_sim/callbacks: faults, hold, flush, settle and the record, as JSON."""
    async with aiohttp.ClientSession(sim.url) as anon:
        async with anon.post("/_sim/callbacks/faults", json={"kind": "late", "status": "queued"}) as resp:
            assert resp.status == 201
        async with anon.post("/_sim/callbacks/faults", json={"kind": "sometimes"}) as resp:
            assert resp.status == 400 and "kind" in (await resp.json())["error"]
        async with anon.post("/_sim/callbacks/hold") as resp:
            assert (await resp.json()) == {"held": 0}
        await create(sim, StatusCallback=bot.url)
        async with anon.post("/_sim/advance", json={"seconds": 1}) as resp:
            assert resp.status == 200
        async with anon.post("/_sim/callbacks/settle") as resp:
            assert resp.status == 200
        async with anon.get("/_sim/") as resp:
            assert (await resp.json())["held_callbacks"] == 2
        assert bot.hooks == []
        async with anon.post("/_sim/callbacks/flush", json={"order": "sideways"}) as resp:
            assert resp.status == 400
        async with anon.post("/_sim/callbacks/flush", json={"release": True}) as resp:
            assert (await resp.json()) == {"flushed": 2}
        async with anon.get("/_sim/callbacks") as resp:
            record = await resp.json()
        async with anon.get("/_sim/callbacks/faults") as resp:
            assert await resp.json() == []
    assert bot.statuses() == ["sent", "queued"]
    assert [(r["message_status"], r["status"], r["fault"]) for r in record] == [
        ("sent", 204, None),
        ("queued", 204, "late"),
    ]
    assert record[0]["form"]["MessageStatus"] == "sent" and record[0]["signature"]

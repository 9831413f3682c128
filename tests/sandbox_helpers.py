"""What the simulator tests share: a settable clock, a port-0 stand-in for the bot, the Slack simulator."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from aiohttp import web

from bot.sandbox.slack import SlackSimulator

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

# The Twilio simulator tests' accounts: ACCOUNT owns NUMBER and SERVICE; OTHER is a second tenant.
ACCOUNT = "AC" + "1" * 32
TOKEN = "token-one"
OTHER = "AC" + "2" * 32
OTHER_TOKEN = "token-two"
SERVICE = "MG" + "4" * 32
NUMBER = "+15557654321"
TO = "+15551230000"
START = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Simulator(Protocol):
    async def start(self) -> Any: ...
    async def stop(self) -> Any: ...


SimT = TypeVar("SimT", bound=_Simulator)


class FakeClock:
    """A settable clock (seconds) for the Slack simulator's expiries and rate-limit buckets."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def serve(routes: Mapping[str, Handler]) -> AsyncIterator[str]:
    """Answer POSTs to `routes` on 127.0.0.1, port 0, until the block ends; yields the base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running(simulator: SimT) -> AsyncIterator[SimT]:
    """Start a simulator (Slack or Twilio) for the block and stop it afterwards."""
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@contextlib.asynccontextmanager
async def running_slack(bot_token: str, **options: Any) -> AsyncIterator[SlackSimulator]:
    """A started Slack simulator without a manifest, signing with SLACK_SECRET; stopped afterwards."""
    simulator = SlackSimulator(
        signing_secret=SLACK_SECRET, bot_token=bot_token, manifest_path=None, **options
    )
    async with running(simulator):
        yield simulator

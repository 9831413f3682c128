"""The Slack simulator's workspaces: several teams, each with its own bot token, people and channels."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack import (
    ADMIN_ID,
    GENERAL_ID,
    TEAM_ID,
    SlackSimulator,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-first-team"
SCOPES = {"commands", "chat:write", "users:read", "channels:read"}


class FakeClock:
    """A settable clock."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[SlackSimulator]:
    simulator = SlackSimulator(
        signing_secret=SECRET, bot_token=TOKEN, manifest_path=None, scopes=SCOPES, clock=clock
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


def web(sim: SlackSimulator, token: str) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=sim.api_url)


# ----- many teams -------------------------------------------------------------------------------


async def test_each_token_speaks_for_its_own_team(sim: SlackSimulator) -> None:
    """auth.test per token; calls are recorded with their team; another team's channel does not exist."""
    second = sim.add_team("Second Co")
    token = sim.bot_token_of(second.id)
    assert token is not None and token != TOKEN
    first_auth = await web(sim, TOKEN).auth_test()
    second_auth = await web(sim, token).auth_test()
    assert (first_auth["team_id"], first_auth["user_id"]) == (TEAM_ID, "U0BOT")
    assert (second_auth["team_id"], second_auth["user_id"], second_auth["team"]) == (
        second.id,
        second.bot_user_id,
        "Second Co",
    )
    posted = await web(sim, token).chat_postMessage(channel=second.general_id, text="hi")
    assert sim.message(second.general_id, posted["ts"])["bot_id"] == second.bot_id
    assert [c.team_id for c in sim.calls_to("auth.test")] == [TEAM_ID, second.id]
    with pytest.raises(SlackApiError) as refused:
        await web(sim, token).chat_postMessage(channel=GENERAL_ID, text="crossing over")
    assert refused.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as refused:
        await web(sim, token).users_info(user=ADMIN_ID)
    assert refused.value.response["error"] == "user_not_found"
    listed = await web(sim, token).conversations_list()
    assert {c["id"] for c in listed["channels"]} == {second.general_id, second.ops_id}
    by_name = await web(sim, token).chat_postMessage(channel="#general", text="by name")
    assert by_name["channel"] == second.general_id


async def test_people_in_another_team_send_that_teams_ids(sim: SlackSimulator) -> None:
    """A slash command from a second team's channel carries that team's id and domain."""
    second = sim.add_team("Second Co", domain="second")
    captured: list[dict[str, str]] = []

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
        captured.append({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return aiohttp.web.Response()

    app = aiohttp.web.Application()
    app.router.add_post("/slack/events", handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        sim.set_bot_url(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
        await sim.slash_command("help", user_id=second.admin_id, channel_id=second.general_id)
    finally:
        await runner.cleanup()
    (form,) = captured
    assert (form["team_id"], form["team_domain"], form["user_id"]) == (second.id, "second", second.admin_id)

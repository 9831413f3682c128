"""The Slack simulator's workspaces: teams and tokens, OAuth v2 installs, rotation, uninstall, App Home."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from sandbox_helpers import FakeClock, running_slack, serve
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack import (
    ADMIN_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    CODE_TTL,
    GENERAL_ID,
    TEAM_ID,
    TOKEN_TTL,
    SlackSimulator,
)

TOKEN = "xoxb-first-team"
SCOPES = {"commands", "chat:write", "users:read", "channels:read"}
REDIRECT = "https://bot.example/slack/oauth_redirect"


@pytest.fixture
async def sim(slack_clock: FakeClock) -> AsyncIterator[SlackSimulator]:
    async with running_slack(TOKEN, scopes=SCOPES, clock=slack_clock) as simulator:
        yield simulator


def web(sim: SlackSimulator, token: str) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=sim.api_url)


def authorize_url(sim: SlackSimulator, **extra: str) -> str:
    params = {
        "client_id": CLIENT_ID,
        "scope": "commands,chat:write",
        "state": "st-1",
        "redirect_uri": REDIRECT,
    }
    return f"{sim.url}/oauth/v2/authorize?{urlencode({**params, **extra})}"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def exchange(sim: SlackSimulator, code: str, **extra: str) -> Any:
    return await AsyncWebClient(base_url=sim.api_url).oauth_v2_access(
        client_id=extra.pop("client_id", CLIENT_ID),
        client_secret=extra.pop("client_secret", CLIENT_SECRET),
        code=code,
        redirect_uri=REDIRECT,
        **extra,
    )


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

    async with serve({"/slack/events": handle}) as base:
        sim.set_bot_url(f"{base}/slack/events")
        await sim.slash_command("help", user_id=second.admin_id, channel_id=second.general_id)
    (form,) = captured
    assert (form["team_id"], form["team_domain"], form["user_id"]) == (second.id, "second", second.admin_id)


# ----- OAuth -----------------------------------------------------------------------------------


async def test_install_through_the_authorize_page(sim: SlackSimulator) -> None:
    """The page lists teams; Allow redirects with code and state; the code buys a bot token once."""
    second = sim.add_team("Second Co", install=False)
    assert not sim.installed(second.id)
    async with aiohttp.ClientSession() as http:
        async with http.get(authorize_url(sim)) as resp:
            page = await resp.text()
        assert resp.status == 200 and "Second Co" in page and "Cancel" in page
        links = re.findall(r'href="\?([^"]+)"', page)
        allow = next(link for link in links if f"team={second.id}" in link.replace("&amp;", "&"))
        async with http.get(
            f"{sim.url}/oauth/v2/authorize?{allow.replace('&amp;', '&')}", allow_redirects=False
        ) as resp:
            assert resp.status == 302
            location = resp.headers["Location"]
    assert location.startswith(REDIRECT) and query_of(location)["state"] == "st-1"
    answer = await exchange(sim, query_of(location)["code"])
    assert answer["access_token"].startswith("xoxb-") and answer["token_type"] == "bot"
    assert (answer["team"], answer["bot_user_id"], answer["app_id"]) == (
        {"name": "Second Co", "id": second.id},
        second.bot_user_id,
        "A0PLAYGRND",
    )
    assert answer["scope"] == "chat:write,commands" and answer["is_enterprise_install"] is False
    assert answer["enterprise"] is None and "refresh_token" not in answer
    assert (await web(sim, answer["access_token"]).auth_test())["team_id"] == second.id
    with pytest.raises(SlackApiError) as refused:
        await exchange(sim, query_of(location)["code"])
    assert refused.value.response["error"] == "invalid_code"
    again = await exchange(sim, query_of(sim.authorize(authorize_url(sim), team_id=second.id))["code"])
    assert again["access_token"] == answer["access_token"], "a reinstall keeps the bot token"


async def test_denied_and_bad_requests(sim: SlackSimulator, slack_clock: FakeClock) -> None:
    """Denied: access_denied; scopes the app lacks: invalid_scope; a stale code or a wrong secret: refused."""
    denied = sim.authorize(authorize_url(sim), approve=False)
    assert query_of(denied) == {"error": "access_denied", "state": "st-1"}
    assert query_of(sim.authorize(authorize_url(sim, scope="admin")))["error"] == "invalid_scope"
    with pytest.raises(ValueError, match="client_id"):
        sim.authorize(authorize_url(sim, client_id="someone-else"))
    async with aiohttp.ClientSession() as http, http.get(authorize_url(sim, client_id="x")) as resp:
        assert resp.status == 400 and "invalid_client_id" in await resp.text()
    code = query_of(sim.authorize(authorize_url(sim)))["code"]
    with pytest.raises(SlackApiError) as refused:
        await exchange(sim, code, client_secret="guess")
    assert refused.value.response["error"] == "bad_client_secret"
    slack_clock.now += CODE_TTL + 1
    with pytest.raises(SlackApiError) as refused:
        await exchange(sim, code)
    assert refused.value.response["error"] == "invalid_code"
    assert [i.get("outcome") for i in sim.installs] == ["denied", "invalid_scope", "approved"]


async def test_token_rotation_expires_and_refreshes(slack_clock: FakeClock) -> None:
    """With rotation: xoxe tokens that expire in 12 h, and single-use refresh tokens that renew them."""
    async with running_slack(TOKEN, clock=slack_clock, token_rotation=True) as sim:
        sim.oauth_redirect_url = REDIRECT
        second = sim.add_team("Rotating", install=False)
        code = query_of(sim.authorize(f"client_id={CLIENT_ID}&scope=chat:write", team_id=second.id))["code"]
        answer = await exchange(sim, code)
        assert answer["access_token"].startswith("xoxe.xoxb-") and answer["expires_in"] == TOKEN_TTL
        refresh = answer["refresh_token"]
        assert refresh.startswith("xoxe-1-")
        slack_clock.now += TOKEN_TTL
        with pytest.raises(SlackApiError) as refused:
            await web(sim, answer["access_token"]).auth_test()
        assert refused.value.response["error"] == "token_expired"
        oauth = AsyncWebClient(base_url=sim.api_url)
        renewed = await oauth.oauth_v2_access(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            grant_type="refresh_token",
            refresh_token=refresh,
        )
        assert renewed["access_token"] != answer["access_token"] and renewed["refresh_token"] != refresh
        assert renewed["scope"] == "chat:write"
        assert (await web(sim, renewed["access_token"]).auth_test())["team_id"] == second.id
        with pytest.raises(SlackApiError) as refused:
            await oauth.oauth_v2_access(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                grant_type="refresh_token",
                refresh_token=refresh,
            )
        assert refused.value.response["error"] == "invalid_refresh_token"


async def test_auth_revoke_and_apps_uninstall(sim: SlackSimulator) -> None:
    """auth.revoke kills the calling token (not with test=true); apps.uninstall every token of the team."""
    second = sim.add_team("Second Co")
    token = sim.bot_token_of(second.id)
    assert token is not None
    assert (await web(sim, token).auth_revoke(test=True))["revoked"] is False
    assert (await web(sim, token).auth_revoke())["revoked"] is True
    with pytest.raises(SlackApiError) as refused:
        await web(sim, token).auth_test()
    assert refused.value.response["error"] == "token_revoked"
    with pytest.raises(SlackApiError) as refused:
        await web(sim, TOKEN).apps_uninstall(client_id=CLIENT_ID, client_secret="guess")
    assert refused.value.response["error"] == "bad_client_secret"
    await web(sim, TOKEN).apps_uninstall(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert not sim.installed(TEAM_ID)
    with pytest.raises(SlackApiError) as refused:
        await web(sim, TOKEN).auth_test()
    assert refused.value.response["error"] == "token_revoked"


# ----- App Home ----------------------------------------------------------------------------------


async def test_views_publish_keeps_one_home_per_person_and_team(sim: SlackSimulator) -> None:
    """views.publish stores a Home view per user and team; another team's user is user_not_found."""
    second = sim.add_team("Second Co")
    token = sim.bot_token_of(second.id)
    assert token is not None
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Accounts: 1"}}],
    }
    first = await web(sim, TOKEN).views_publish(user_id=ADMIN_ID, view=home)
    other = {**home, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Accounts: 0"}}]}
    await web(sim, token).views_publish(user_id=second.admin_id, view=other)
    assert set(sim.home_views) == {(TEAM_ID, ADMIN_ID), (second.id, second.admin_id)}
    shown = sim.home_view(second.admin_id)
    assert shown is not None and shown["blocks"][0]["text"]["text"] == "Accounts: 0"
    again = await web(sim, TOKEN).views_publish(user_id=ADMIN_ID, view=home, hash=first["view"]["hash"])
    assert again["view"]["id"] == first["view"]["id"]
    for view, user, error in (
        (home, second.admin_id, "user_not_found"),
        (
            {**home, "type": "modal", "title": {"type": "plain_text", "text": "x"}},
            ADMIN_ID,
            "invalid_arguments",
        ),
    ):
        with pytest.raises(SlackApiError) as refused:
            await web(sim, TOKEN).views_publish(user_id=user, view=view)
        assert refused.value.response["error"] == error
    with pytest.raises(SlackApiError) as refused:
        await web(sim, TOKEN).views_publish(user_id=ADMIN_ID, view=home, hash="stale")
    assert refused.value.response["error"] == "hash_conflict"

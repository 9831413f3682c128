"""Two workspaces installed through OAuth against the Slack simulator: own token, own accounts, own history.

The bot runs in OAuth mode; a browser (with cookies) follows /slack/install to the simulator's authorize
page and back to /slack/oauth_redirect, as a person installing the app would.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conversation_helpers import roots, thread
from harness import OTHER_ACCOUNT_SID, Stack, card_text, start_stack, stop_stack
from twilio.request_validator import RequestValidator

from bot.sandbox.slack import CLIENT_ID, CLIENT_SECRET, TEAM_ID, SimFile, Team
from bot.sandbox.twilio import DEFAULT_FROM, SANDBOX_ACCOUNT_SID
from bot.slack.oauth import NOT_INSTALLED
from storage.accounts import mask_sid

OTHER_FROM = "+15550000001"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The bot in OAuth mode, live status on; the simulator's team and a second one, neither installed."""
    running = await start_stack(
        tmp_path / "bot.db",
        with_account=False,
        live_status=True,
        status_update_interval=0.2,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
    )
    running.slack.oauth_redirect_url = f"{running.bot_url}/slack/oauth_redirect"
    try:
        yield running
    finally:
        await stop_stack(running)


async def _get(browser: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with browser.get(url, allow_redirects=False) as resp:
        return resp.status, await resp.text()


async def _authorize_link(stack: Stack, browser: aiohttp.ClientSession) -> str:
    status, page = await _get(browser, f"{stack.bot_url}/slack/install")
    assert status == 200
    match = re.search(r'href="([^"]*oauth/v2/authorize[^"]*)"', page)
    assert match, page
    return unescape(match.group(1))


async def install(stack: Stack, browser: aiohttp.ClientSession, team_id: str) -> str:
    """Add to Slack → approve for `team_id` → back to the bot; returns the page the bot showed."""
    back = stack.slack.authorize(await _authorize_link(stack, browser), team_id=team_id)
    assert back.startswith(f"{stack.bot_url}/slack/oauth_redirect?")
    status, page = await _get(browser, back)
    assert status == 200, page
    return page


async def command(stack: Stack, team: Team, text: str) -> None:
    """`/twilio text` typed by the team's admin in its #general; waits for the bot."""
    await stack.slack.slash_command(text, user_id=team.admin_id, channel_id=team.general_id)
    await stack.settle()


async def send_one(stack: Stack, team: Team, body: str) -> str:
    """`/twilio send` of `body` from the team's admin, the only message created so far; returns its SID."""
    await command(stack, team, f"send +15551234567 {body}")
    (created,) = stack.twilio.creates()
    assert created.message_sid is not None
    return created.message_sid


def _texts(stack: Stack, team: Team) -> list[str]:
    seen = [card_text(m) for m in stack.slack.messages(team.general_id) if m.get("bot_id")]
    seen += [card_text(e) for e in stack.slack.ephemerals if e.get("user") == team.admin_id]
    return seen


async def two_teams(stack: Stack, browser: aiohttp.ClientSession) -> tuple[Team, Team]:
    """Both workspaces installed through OAuth, each with a Twilio account of its own."""
    first = stack.slack.teams[TEAM_ID]
    second = stack.slack.add_team("Second Co", install=False)
    for team in (first, second):
        page = await install(stack, browser, team.id)
        assert f"installed in {team.name}" in page and "/twilio setup" in page
    await stack.add_account(team_id=first.id, sid=SANDBOX_ACCOUNT_SID, token=stack.twilio_token)
    await stack.add_account(
        team_id=second.id,
        sid=OTHER_ACCOUNT_SID,
        token=stack.other_token,
        default_from=OTHER_FROM,
        default_service_sid=None,
    )
    return first, second


async def test_each_workspace_uses_its_own_token_and_twilio_account(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """A send in each team: its cards posted with that team's token, its create on that team's account."""
    first, second = await two_teams(stack, browser)
    stored = {i.team_id: i for i in await stack.runtime.stores.installations.list()}
    assert stored[first.id].bot_token == stack.slack.bot_token_of(first.id)
    assert stored[second.id].bot_token == stack.slack.bot_token_of(second.id)
    assert stored[first.id].bot_token != stored[second.id].bot_token
    assert stored[second.id].bot_user_id == second.bot_user_id and stored[second.id].installed_by

    before = len(stack.slack.calls)
    await command(stack, second, "send +15551234567 hello from the second team")
    calls = [c for c in stack.slack.calls[before:] if c.method != "response_url"]
    assert calls and {c.team_id for c in calls} == {second.id}, [(c.method, c.team_id) for c in calls]
    assert [r.account_sid for r in stack.twilio.creates()] == [OTHER_ACCOUNT_SID]
    assert "hello from the second team" in "".join(_texts(stack, second))

    before = len(stack.slack.calls)
    await command(stack, first, "send +15551234567 hello from the first team")
    calls = [c for c in stack.slack.calls[before:] if c.method != "response_url"]
    assert calls and {c.team_id for c in calls} == {first.id}
    assert [r.account_sid for r in stack.twilio.creates()] == [OTHER_ACCOUNT_SID, SANDBOX_ACCOUNT_SID]
    assert not stack.slack.problems


async def test_neither_workspace_can_touch_the_others_messages_accounts_or_history(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """Fetch, cancel, delete of team one's message from team two fail; lists show only their own."""
    first, second = await two_teams(stack, browser)
    sid = await send_one(stack, first, "private to the first team")
    for verb in ("fetch", "cancel", "delete"):
        seen = len(_texts(stack, second))
        await command(stack, second, f"{verb} {sid}")
        answer = "\n".join(_texts(stack, second)[seen:])
        assert "Twilio has no such message" in answer, answer
        assert "private to the first team" not in answer
    # Every look at that message from the second team went to the second team's own Twilio account.
    addressed = [r for r in stack.twilio.requests if sid in r.path and r.account_sid != SANDBOX_ACCOUNT_SID]
    assert not [r for r in stack.twilio.requests if sid in r.path and r.account_sid == SANDBOX_ACCOUNT_SID]
    assert addressed and {r.account_sid for r in addressed} == {OTHER_ACCOUNT_SID}
    assert all((r.status or 0) >= 400 for r in addressed)
    await command(stack, second, "accounts")
    await command(stack, second, "history")
    second_seen = "\n".join(_texts(stack, second))
    assert mask_sid(OTHER_ACCOUNT_SID) in second_seen and mask_sid(SANDBOX_ACCOUNT_SID) not in second_seen
    assert "private to the first team" not in second_seen
    assert [e.team_id for e in await stack.runtime.services.workspace.history(second.id, 50)] != []
    assert all(e.team_id == second.id for e in await stack.runtime.services.workspace.history(second.id, 50))


async def test_forged_replayed_and_reused_codes_are_refused(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """The redirect followed twice is a replayed state; a fresh state with a used code is refused by Slack."""
    second = stack.slack.add_team("Second Co", install=False)
    back = stack.slack.authorize(await _authorize_link(stack, browser), team_id=second.id)
    assert (await _get(browser, back))[0] == 200
    status, page = await _get(browser, back)
    assert status in (400, 401) and "nothing was installed" in page
    code = re.search(r"code=([^&]+)", back).group(1)  # type: ignore[union-attr]
    fresh = re.search(r"state=([^&]+)", await _authorize_link(stack, browser)).group(1)  # type: ignore[union-attr]
    status, page = await _get(browser, f"{stack.bot_url}/slack/oauth_redirect?code={code}&state={fresh}")
    assert status == 401 and "Slack did not accept the install code" in page
    assert [c.response.get("error") for c in stack.slack.calls_to("oauth.v2.access")] == [
        None,
        "invalid_code",
    ]
    denied = stack.slack.authorize(await _authorize_link(stack, browser), team_id=second.id, approve=False)
    status, page = await _get(browser, denied)
    assert status == 200 and "cancelled" in page
    assert [i.team_id for i in await stack.runtime.stores.installations.list()] == [second.id]


async def test_uninstall_forgets_and_a_reinstall_starts_clean(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """Slack's uninstall: the team's tokens, Twilio accounts and routes go, even from the file; the other
    stays."""
    first, second = await two_teams(stack, browser)
    runtime = stack.runtime
    await command(stack, first, f"route {DEFAULT_FROM} <#{first.ops_id}|ops>")
    await command(stack, second, f"route {OTHER_FROM} <#{second.ops_id}|ops>")
    assert len(await runtime.stores.conversations.routes(second.id)) == 1
    secrets = [stack.slack.bot_token_of(second.id) or "", stack.other_token]
    secrets += [
        str(r["v"])
        for r in await runtime.db.fetch_all(
            "SELECT bot_token_enc AS v FROM slack_installations WHERE team_id = ?", [second.id]
        )
    ]
    secrets += [
        str(r["v"])
        for r in await runtime.db.fetch_all(
            "SELECT secret_enc AS v FROM accounts WHERE team_id = ?", [second.id]
        )
    ]
    await stack.slack.uninstall_app(second.id)
    await stack.settle()
    assert [i.team_id for i in await runtime.stores.installations.list()] == [first.id]
    assert await runtime.stores.accounts.list(second.id) == []
    assert len(await runtime.stores.accounts.list(first.id)) == 1
    assert await runtime.stores.conversations.routes(second.id) == []
    assert len(await runtime.stores.conversations.routes(first.id)) == 1
    path = stack.settings.database_path
    data = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    for needle in secrets:
        assert needle and needle.encode() not in data
    await command(stack, second, "accounts")
    assert NOT_INSTALLED in _texts(stack, second)[-1]

    await install(stack, browser, second.id)
    await command(stack, second, "accounts")
    assert "No Twilio account is set up yet." in _texts(stack, second)[-1]


async def test_two_independent_home_tabs(stack: Stack, browser: aiohttp.ClientSession) -> None:
    """Each admin's Home tab shows their own workspace's account, published with their team's token."""
    first, second = await two_teams(stack, browser)
    await stack.slack.open_app_home(first.admin_id)
    await stack.slack.open_app_home(second.admin_id)
    await stack.settle()
    first_view, second_view = stack.slack.home_view(first.admin_id), stack.slack.home_view(second.admin_id)
    assert first_view is not None and second_view is not None
    first_home = json.dumps(first_view["blocks"], ensure_ascii=False)
    second_home = json.dumps(second_view["blocks"], ensure_ascii=False)
    sandbox, other = mask_sid(SANDBOX_ACCOUNT_SID), mask_sid(OTHER_ACCOUNT_SID)
    assert sandbox in first_home and other not in first_home
    assert other in second_home and sandbox not in second_home
    assert SANDBOX_ACCOUNT_SID not in first_home
    publishes = stack.slack.calls_to("views.publish")
    assert [(c.team_id, c.ok) for c in publishes] == [(first.id, True), (second.id, True)]


async def test_a_rotating_token_is_refreshed_before_it_expires(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """With token rotation: a token due within 2 hours is traded for a new one once, then used."""
    stack.slack.token_rotation = True
    second = stack.slack.add_team("Rotating Co", install=False)
    await install(stack, browser, second.id)
    installs = stack.runtime.services.installs
    found = await installs.find(team_id=second.id, enterprise_id=None)
    assert found is not None and found.bot_token.startswith("xoxe.xoxb-") and found.bot_refresh_token
    assert found.bot_token_expires_at is not None
    # An install made 11 hours ago: its token is due for a refresh.
    await installs.save(replace(found, bot_token_expires_at=datetime.now(UTC) + timedelta(minutes=59)))
    await command(stack, second, "accounts")
    renewed = await installs.find(team_id=second.id, enterprise_id=None)
    assert renewed is not None and renewed.bot_token != found.bot_token
    assert renewed.bot_refresh_token != found.bot_refresh_token
    assert renewed.bot_token == stack.slack.bot_token_of(second.id)
    refreshes = [
        c for c in stack.slack.calls_to("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"
    ]
    assert len(refreshes) == 1 and refreshes[0].ok
    last = [c for c in stack.slack.calls if c.method not in ("response_url", "oauth.v2.access")][-1]
    assert last.ok and last.team_id == second.id
    assert not any(NOT_INSTALLED in t for t in _texts(stack, second))


async def test_a_status_callback_redraws_the_card_with_its_workspaces_token(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """Twilio's report for the second team's message: its card is updated with the second team's token."""
    _, second = await two_teams(stack, browser)
    sid = await send_one(stack, second, "live in the second team")
    form = {
        "AccountSid": OTHER_ACCOUNT_SID,
        "MessageSid": sid,
        "MessageStatus": "delivered",
        "To": "+15551234567",
        "From": OTHER_FROM,
    }
    url = f"{stack.settings.public_url}/twilio/status"
    signature = RequestValidator(stack.other_token).compute_signature(url, form)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{stack.bot_url}/twilio/status", data=form, headers={"X-Twilio-Signature": signature}
        ) as resp,
    ):
        assert resp.status == 204
    await stack.settle()
    (update,) = stack.slack.calls_to("chat.update")
    assert update.ok and update.team_id == second.id and update.args["channel"] == second.general_id
    assert "delivered" in card_text(stack.slack.messages(second.general_id)[-1])


def _posts_in(stack: Stack, channel: str, since: int) -> list[Any]:
    """The Web API calls since `since` that wrote in `channel` (posts, reactions, uploads)."""
    return [c for c in stack.slack.calls[since:] if c.args.get("channel") == channel]


async def route_to_ops(stack: Stack, team: Team, number: str) -> None:
    """`/twilio route` of our `number` to the team's #ops; Twilio sends that number's texts to the bot."""
    public = stack.settings.public_url
    assert public
    await command(stack, team, f"route {number} <#{team.ops_id}|ops>")
    stack.twilio.set_sms_url(number, f"{public}/twilio/inbound")


async def test_each_workspaces_conversations_use_its_own_token_and_account(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """Texts to each team's routed number post in its #ops with its token; its replies use its account."""
    first, second = await two_teams(stack, browser)
    await route_to_ops(stack, first, DEFAULT_FROM)
    await route_to_ops(stack, second, OTHER_FROM)

    before = len(stack.slack.calls)
    await stack.twilio.receive_text("+15550003333", DEFAULT_FROM, "hello first team")
    await stack.twilio.receive_text("+15550004444", OTHER_FROM, "hello second team")
    await stack.settle()
    for team, body in ((first, "hello first team"), (second, "hello second team")):
        posts = _posts_in(stack, team.ops_id, before)
        assert len(posts) >= 2 and {c.team_id for c in posts} == {team.id}, [
            (c.method, c.team_id) for c in posts
        ]
        (root,) = roots(stack, team.ops_id)
        shown = [card_text(m) for m in thread(stack, root["ts"], team.ops_id)]
        assert any(body in text for text in shown), shown
    assert "hello second team" not in json.dumps(stack.slack.messages(first.ops_id))

    (root,) = roots(stack, second.ops_id)
    before = len(stack.slack.calls)
    answer = await stack.slack.post_message(
        second.ops_id, "Thanks from the second team", user=second.admin_id, thread_ts=root["ts"]
    )
    await stack.settle()
    (reply,) = stack.twilio.creates()
    assert reply.account_sid == OTHER_ACCOUNT_SID
    assert dict(reply.form)["From"] == OTHER_FROM and dict(reply.form)["To"] == "+15550004444"
    assert "outbox_tray" in stack.slack.reactions_on(second.ops_id, answer["ts"])
    # Twilio's delivery report swaps the reaction, with the second team's token though no Slack request
    # carried it.
    stack.twilio.clock.advance(timedelta(seconds=10))
    await stack.twilio.settle_callbacks()
    await stack.settle()
    assert set(stack.slack.reactions_on(second.ops_id, answer["ts"])) == {"white_check_mark"}
    reactions = [c for c in _posts_in(stack, second.ops_id, before) if c.method.startswith("reactions.")]
    assert {c.method for c in reactions} >= {"reactions.add", "reactions.remove"}
    assert {c.team_id for c in reactions} == {second.id}
    assert not [c for c in stack.slack.calls[before:] if c.team_id == first.id]
    assert not stack.slack.problems


async def test_a_file_in_a_second_workspace_reply_is_read_with_that_workspaces_token(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """The media link of a reply's file streams it from Slack with the file's own workspace token."""
    _, second = await two_teams(stack, browser)
    await route_to_ops(stack, second, OTHER_FROM)
    await stack.twilio.receive_text("+15550004444", OTHER_FROM, "send me the form")
    await stack.settle()
    (root,) = roots(stack, second.ops_id)
    pdf = b"%PDF-1.4 " + b"s" * 300
    await stack.slack.post_message(
        second.ops_id, "here", user=second.admin_id, thread_ts=root["ts"], files=[SimFile("form.pdf", pdf)]
    )
    await stack.settle()
    (create,) = stack.twilio.creates()
    assert create.account_sid == OTHER_ACCOUNT_SID
    (link,) = [v for k, v in create.form if k == "MediaUrl"]
    async with aiohttp.ClientSession() as session, session.get(link) as resp:
        assert resp.status == 200 and await resp.read() == pdf
    assert stack.slack.file_downloads[-1]["served"] is True

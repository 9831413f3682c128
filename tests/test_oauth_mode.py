"""OAuth mode: install pages, refused installs, per-team authorize from a cache, uninstall that forgets."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from harness import Stack, start_stack, stop_stack
from yarl import URL

from bot.sandbox.slack import ADMIN_ID, BOT_USER_ID, TEAM_ID
from bot.slack.oauth import BOT_SCOPES, NOT_INSTALLED
from storage.accounts import mask_sid
from storage.installations import StoredInstallation

CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "oauth-client-secret-for-tests"


@pytest.fixture
async def oauth_stack(tmp_path: Any) -> AsyncIterator[Stack]:
    """The bot in OAuth mode against the simulators, with no workspace installed yet."""
    stack = await start_stack(
        tmp_path / "bot.db", with_account=False, slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET
    )
    try:
        yield stack
    finally:
        await stop_stack(stack)


async def _install_link(stack: Stack, browser: aiohttp.ClientSession) -> str:
    async with browser.get(f"{stack.bot_url}/slack/install") as resp:
        assert resp.status == 200
        page = await resp.text()
    match = re.search(r'href="([^"]*oauth/v2/authorize[^"]*)"', page)
    assert match, page
    return unescape(match.group(1))


def _set_state_cookie(browser: aiohttp.ClientSession, stack: Stack, state: str) -> None:
    browser.cookie_jar.update_cookies({"slack-app-oauth-state": state}, response_url=URL(stack.bot_url))


async def _redirect(browser: aiohttp.ClientSession, stack: Stack, query: str) -> tuple[int, str]:
    async with browser.get(f"{stack.bot_url}/slack/oauth_redirect?{query}", allow_redirects=False) as resp:
        return resp.status, await resp.text()


def _installed(stack: Stack, token: str | None = None) -> StoredInstallation:
    return StoredInstallation(
        team_id=TEAM_ID,
        enterprise_id=None,
        is_enterprise_install=False,
        bot_token=token or stack.bot_token,
        team_name="Sandbox",
        bot_user_id=BOT_USER_ID,
        bot_scopes=BOT_SCOPES,
        installed_by=ADMIN_ID,
    )


async def _post_event(stack: Stack, team_id: str, event: dict[str, Any]) -> int:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": team_id,
            "api_app_id": "A0SANDBOX",
            "event": event,
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
        }
    ).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(stack.signing_secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{stack.bot_url}/slack/events", data=body, headers=headers) as resp,
    ):
        status = resp.status
    await stack.settle()
    return status


async def test_install_page_links_to_slack_with_the_manifest_scopes_and_a_state(
    oauth_stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """/slack/install links to the authorize page beside SLACK_API_URL, with our client id, scopes, state."""
    url = urlsplit(await _install_link(oauth_stack, browser))
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}/api/" == oauth_stack.slack.api_url
    assert url.path == "/oauth/v2/authorize"
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"][0].split(",") == list(BOT_SCOPES)
    state = query["state"][0]
    assert {c.key: c.value for c in browser.cookie_jar}["slack-app-oauth-state"] == state


async def test_a_forged_state_is_refused_and_nothing_is_stored(
    oauth_stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """A state this browser was not given, or one the bot never issued, gets a page saying so."""
    await _install_link(oauth_stack, browser)
    status, page = await _redirect(browser, oauth_stack, "code=abc&state=forged")
    assert status == 400 and "not started from this browser" in page
    _set_state_cookie(browser, oauth_stack, "forged")
    status, page = await _redirect(browser, oauth_stack, "code=abc&state=forged")
    assert status == 401 and "already used, is more than 10 minutes old, or was not made by this bot" in page
    assert await oauth_stack.runtime.stores.installations.list() == []


async def test_a_cancelled_install_says_so(oauth_stack: Stack, browser: aiohttp.ClientSession) -> None:
    """error=access_denied from Slack: a page saying the install was cancelled; nothing stored."""
    state = parse_qs(urlsplit(await _install_link(oauth_stack, browser)).query)["state"][0]
    status, page = await _redirect(browser, oauth_stack, f"error=access_denied&state={state}")
    assert status == 200 and "The install was cancelled in Slack, so nothing was installed." in page
    assert '<a href="/slack/install">' in page
    assert await oauth_stack.runtime.stores.installations.list() == []


async def test_a_failed_exchange_then_the_same_state_again_are_refused(
    oauth_stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """A code Slack refuses: a page, nothing stored; the state it came with is spent."""
    state = parse_qs(urlsplit(await _install_link(oauth_stack, browser)).query)["state"][0]
    status, page = await _redirect(browser, oauth_stack, f"code=not-a-code&state={state}")
    assert status == 401 and "Slack did not accept the install code" in page
    assert [c.args.get("code") for c in oauth_stack.slack.calls_to("oauth.v2.access")] == ["not-a-code"]
    _set_state_cookie(browser, oauth_stack, state)
    status, page = await _redirect(browser, oauth_stack, f"code=not-a-code&state={state}")
    assert status == 401 and "already used" in page
    assert await oauth_stack.runtime.stores.installations.list() == []
    assert CLIENT_SECRET not in page


async def test_a_state_older_than_ten_minutes_is_refused(
    oauth_stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """A state issued 11 minutes ago is refused even with the matching cookie."""
    old = await oauth_stack.runtime.stores.states.issue(now=datetime.now(UTC) - timedelta(minutes=11))
    _set_state_cookie(browser, oauth_stack, old)
    status, page = await _redirect(browser, oauth_stack, f"code=abc&state={old}")
    assert status == 401 and "more than 10 minutes old" in page
    assert oauth_stack.slack.calls_to("oauth.v2.access") == []


async def test_a_command_from_a_workspace_without_an_installation_does_nothing(oauth_stack: Stack) -> None:
    """No installation: the user is told in one sentence, and the bot calls no Slack method with a token."""
    await oauth_stack.command("help")
    assert any(NOT_INSTALLED in text for text in oauth_stack.ephemeral_texts(ADMIN_ID))
    assert oauth_stack.cards() == []
    assert [c.method for c in oauth_stack.slack.calls if c.method != "response_url"] == []


async def test_an_installed_workspace_is_authorized_from_memory(oauth_stack: Stack) -> None:
    """After the first request the team's token comes from the cache; forgetting the team drops it."""
    runtime = oauth_stack.runtime
    await runtime.services.installs.save(_installed(oauth_stack))
    await oauth_stack.command("help")
    assert "/twilio send" in oauth_stack.ephemeral_texts(ADMIN_ID)[-1]
    # Gone from the table behind the cache's back: the hot path never asks the database.
    await runtime.db.execute("DELETE FROM slack_installations")
    seen = len(oauth_stack.ephemeral_texts(ADMIN_ID))
    await oauth_stack.command("help")
    assert "/twilio send" in oauth_stack.ephemeral_texts(ADMIN_ID)[seen]
    await runtime.services.installs.forget(team_id=TEAM_ID, why="test")
    await oauth_stack.command("help")
    assert NOT_INSTALLED in oauth_stack.ephemeral_texts(ADMIN_ID)[-1]


@pytest.mark.parametrize(
    "event",
    [
        {"type": "app_uninstalled"},
        {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [BOT_USER_ID]}},
    ],
    ids=["app_uninstalled", "tokens_revoked"],
)
async def test_uninstall_forgets_tokens_and_twilio_accounts(
    oauth_stack: Stack, event: dict[str, Any]
) -> None:
    """The event deletes the team's installation and Twilio accounts; no byte of them stays on disk."""
    runtime = oauth_stack.runtime
    await runtime.services.installs.save(_installed(oauth_stack))
    await oauth_stack.add_account()
    enc = await runtime.db.fetch_all("SELECT bot_token_enc AS v FROM slack_installations")
    enc += await runtime.db.fetch_all("SELECT secret_enc AS v FROM accounts")
    assert await _post_event(oauth_stack, TEAM_ID, event) == 200
    assert await runtime.stores.installations.list() == []
    assert await runtime.stores.accounts.list(TEAM_ID) == []
    history = await runtime.services.workspace.history(TEAM_ID, 5)
    assert history[0].operation == "uninstall"
    path = oauth_stack.settings.database_path
    data = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    for needle in [oauth_stack.bot_token, oauth_stack.twilio_token, *(str(r["v"]) for r in enc)]:
        assert needle.encode() not in data
    await oauth_stack.command("help")
    assert NOT_INSTALLED in oauth_stack.ephemeral_texts(ADMIN_ID)[-1]


async def test_revoking_only_user_tokens_keeps_the_installation(oauth_stack: Stack) -> None:
    """tokens_revoked without bot tokens (a user's token) changes nothing: the bot keeps no user tokens."""
    await oauth_stack.runtime.services.installs.save(_installed(oauth_stack))
    event = {"type": "tokens_revoked", "tokens": {"oauth": [ADMIN_ID], "bot": []}}
    assert await _post_event(oauth_stack, TEAM_ID, event) == 200
    assert len(await oauth_stack.runtime.stores.installations.list()) == 1


async def test_install_pages_in_single_workspace_mode_say_there_is_nothing_to_install(
    stack: Stack, browser: aiohttp.ClientSession
) -> None:
    """Without SLACK_CLIENT_ID/SECRET the pages answer 404 with a sentence naming the settings."""
    async with browser.get(f"{stack.bot_url}/slack/install") as resp:
        assert resp.status == 404
        assert "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET" in await resp.text()


async def test_opening_the_home_tab_publishes_one_view_of_this_workspace(oauth_stack: Stack) -> None:
    """app_home_opened: one views.publish, for the viewer, with the workspace's masked account."""
    await oauth_stack.runtime.services.installs.save(_installed(oauth_stack))
    account = await oauth_stack.add_account()
    event = {"type": "app_home_opened", "user": ADMIN_ID, "channel": "D0HOME", "tab": "home"}
    assert await _post_event(oauth_stack, TEAM_ID, event) == 200
    (call,) = oauth_stack.slack.calls_to("views.publish")
    assert call.args["user_id"] == ADMIN_ID
    view = call.args["view"] if isinstance(call.args["view"], dict) else json.loads(call.args["view"])
    text = json.dumps(view, ensure_ascii=False)
    assert view["type"] == "home" and account.label in text
    assert account.account_sid not in text and mask_sid(account.account_sid) in text


async def test_an_installation_the_key_cannot_read_is_a_sentence_not_a_500(oauth_stack: Stack) -> None:
    """A token stored under another SECRET_KEY: the command is answered with the sentence, status 200."""
    from cryptography.fernet import Fernet

    other = Fernet(Fernet.generate_key()).encrypt(oauth_stack.bot_token.encode()).decode()
    await oauth_stack.runtime.db.execute(
        "INSERT INTO slack_installations (install_key, team_id, bot_token_enc, installed_at, updated_at) "
        "VALUES (?, ?, ?, '2026-12-01T00:00:00+00:00', '2026-12-01T00:00:00+00:00')",
        [f"T:{TEAM_ID}", TEAM_ID, other],
    )
    resp = await oauth_stack.command("help")
    assert resp.status == 200
    assert NOT_INSTALLED in oauth_stack.ephemeral_texts(ADMIN_ID)[-1]
    assert oauth_stack.bot_token not in oauth_stack.ephemeral_texts(ADMIN_ID)[-1]

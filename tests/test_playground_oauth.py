"""`python -m bot playground --oauth`: install into two simulated workspaces from a browser, two Home tabs."""

from __future__ import annotations

import asyncio
import json
import re
from html import unescape
from pathlib import Path

import aiohttp
import pytest
from waiting import until

from bot.playground import SECOND_ACCOUNT_SID, run
from bot.sandbox.twilio import SANDBOX_ACCOUNT_SID
from storage.accounts import mask_sid


async def _follow_install(browser: aiohttp.ClientSession, bot_url: str, team_name: str) -> str:
    """Add to Slack → the simulator's authorize page → Allow in `team_name` → the bot's page."""
    async with browser.get(f"{bot_url}/slack/install") as resp:
        link = unescape(re.search(r'href="([^"]*oauth/v2/authorize[^"]*)"', await resp.text()).group(1))  # type: ignore[union-attr]
    async with browser.get(link) as resp:
        page = await resp.text()
    allow = re.search(r'<a href="\?([^"]+)">Allow in ' + re.escape(team_name), page)
    assert allow, page
    base = link.split("?", 1)[0]
    async with browser.get(f"{base}?{unescape(allow.group(1))}") as resp:  # follows the redirect to the bot
        assert resp.status == 200
        return await resp.text()


async def test_two_workspaces_install_and_get_their_own_home_tabs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both workspaces install through the printed /slack/install; each admin's Home shows its own account."""
    ready = asyncio.Event()
    task = asyncio.ensure_future(run(tmp_path / "bot.db", host="127.0.0.1", port=0, ready=ready, oauth=True))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        banner = capsys.readouterr().out
        bot_url = re.search(r"Open (http://127\.0\.0\.1:\d+)/slack/install", banner).group(1)  # type: ignore[union-attr]
        page_url = re.search(r"open (http://\S+)/ in a browser", banner).group(1)  # type: ignore[union-attr]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(f"{page_url}/ui/state") as resp:
                teams = (await resp.json())["teams"]
            assert len(teams) == 2
            for team in teams:
                assert "/twilio setup" in await _follow_install(browser, bot_url, team["name"])
            for team in teams:
                async with browser.post(
                    f"{page_url}/ui/app_home", json={"user_id": team["admin_id"]}
                ) as resp:
                    assert resp.status == 200
            homes: dict[str, str] = {}

            async def published() -> bool:
                async with browser.get(f"{page_url}/ui/state") as resp:
                    homes.update(
                        {
                            h["team_id"]: json.dumps(h["view"]["blocks"], ensure_ascii=False)
                            for h in (await resp.json())["home_views"]
                        }
                    )
                return len(homes) == 2

            await until(published, what="both Home tabs published")
        first, second = (t["id"] for t in teams)
        sandbox, other = mask_sid(SANDBOX_ACCOUNT_SID), mask_sid(SECOND_ACCOUNT_SID)
        assert sandbox in homes[first] and other not in homes[first]
        assert other in homes[second] and sandbox not in homes[second]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

"""Fetching a text's attachments: credentials only to Twilio's host, bounded in time and size."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from bot.twilio.media import MediaFetcher
from bot.twilio.models import Credentials

CREDS = Credentials(account_sid="AC" + "1" * 32, secret="media-secret-token")


@dataclass
class Hosts:
    """A stand-in for Twilio's API host and its storage (another origin), recording who sent credentials."""

    api: str = ""
    cdn: str = ""
    seen: list[tuple[str, bool]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def hosts() -> AsyncIterator[Hosts]:
    """Twilio's API host (redirects media to the CDN) and the CDN (refuses credentials), on loopback."""
    state = Hosts()

    async def media(request: web.Request) -> web.StreamResponse:
        state.seen.append(("api", "Authorization" in request.headers))
        if request.headers.get("Authorization") != aiohttp.encode_basic_auth(CREDS.account_sid, CREDS.secret):
            return web.Response(status=401)
        return web.Response(
            status=307, headers={"Location": f"{state.cdn}/blob/{request.match_info['name']}"}
        )

    async def blob(request: web.Request) -> web.StreamResponse:
        state.seen.append(("cdn", "Authorization" in request.headers))
        if "Authorization" in request.headers:
            return web.Response(status=400, text="Only one auth mechanism allowed")
        name = request.match_info["name"]
        if name == "hang":
            await state.release.wait()
        size = 6 * 1024 * 1024 if name == "big" else 1000
        return web.Response(body=b"x" * size, content_type="image/png")

    runners = []
    for routes in ([web.get("/media/{name}", media)], [web.get("/blob/{name}", blob)]):
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
    api_port = runners[0].addresses[0][1]
    cdn_port = runners[1].addresses[0][1]
    state.api, state.cdn = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{cdn_port}"
    try:
        yield state
    finally:
        state.release.set()
        for runner in runners:
            await runner.cleanup()


async def test_media_is_fetched_with_credentials_and_the_redirect_without(hosts: Hosts) -> None:
    """Basic auth to Twilio's host, none to the storage it redirects to."""
    async with aiohttp.ClientSession() as session:
        got = await MediaFetcher(session, hosts.api).fetch(CREDS, f"{hosts.api}/media/photo", "image/png")
    assert got.problem is None and got.data == b"x" * 1000 and got.content_type == "image/png"
    assert hosts.seen == [("api", True), ("cdn", False)]


async def test_a_link_off_twilios_host_is_not_fetched(hosts: Hosts) -> None:
    """The credentials never go to another host: the link is refused before any request."""
    async with aiohttp.ClientSession() as session:
        got = await MediaFetcher(session, hosts.api).fetch(CREDS, f"{hosts.cdn}/blob/photo", "image/png")
    assert got.data is None and "not on Twilio's API host" in str(got.problem)
    assert hosts.seen == []


async def test_a_medium_above_five_megabytes_is_noted_not_fetched_whole(hosts: Hosts) -> None:
    """6 MB: a reason with the size, no bytes."""
    async with aiohttp.ClientSession() as session:
        got = await MediaFetcher(session, hosts.api).fetch(CREDS, f"{hosts.api}/media/big", "image/png")
    assert got.data is None and "6.0 MB" in str(got.problem)


async def test_a_hanging_fetch_times_out_with_a_reason(hosts: Hosts) -> None:
    """A storage that never answers ends in a reason after the timeout."""
    async with aiohttp.ClientSession() as session:
        fetcher = MediaFetcher(session, hosts.api, timeout=0.3)
        got = await fetcher.fetch(CREDS, f"{hosts.api}/media/hang", "video/mp4")
    assert got.data is None and "longer than 0.3 s" in str(got.problem)

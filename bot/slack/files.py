"""Streaming a Slack file to whoever holds a valid media link (Twilio, fetching a reply's attachment).

The file is read with the bot's token, and only from Slack's file host (or the Slack API's own host,
for the simulator); the token never goes anywhere else, and a redirect (Slack's sign-in page) is not
followed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp
from aiohttp import web
from yarl import URL

from bot.media_links import FileRef

__all__ = ["SlackFiles"]

log = logging.getLogger(__name__)

SLACK_FILE_HOSTS: Final = frozenset({"files.slack.com"})
MAX_FILE_BYTES: Final = 5 * 1024 * 1024
_CHUNK: Final = 64 * 1024


class SlackFiles:
    """Reads Slack files with the bot token and hands them on.

    `bot_token` is the one token, or (OAuth mode) a function giving the token of a file's workspace, None
    once that workspace uninstalled the app.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        bot_token: str | Callable[[str], Awaitable[str | None]],
        api_url: str,
        *,
        timeout: float = 15.0,
    ) -> None:
        self._session = session
        self._token = bot_token
        self._api_origin = URL(api_url).origin()
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def is_slacks(self, url: str) -> bool:
        """Whether `url` is where Slack serves files (the only place the bot token is sent)."""
        try:
            parsed = URL(url)
        except ValueError:
            return False
        if not parsed.is_absolute() or parsed.user is not None:
            return False
        return (
            parsed.scheme == "https" and parsed.host in SLACK_FILE_HOSTS
        ) or parsed.origin() == self._api_origin

    async def respond(self, request: web.Request, ref: FileRef) -> web.StreamResponse:
        """Stream the file to the requester, or answer with a status and a sentence."""
        if not self.is_slacks(ref.url):
            log.warning("a media link names a file outside Slack's file host; refused")
            return web.Response(status=404, text="This media link does not name a Slack file.")
        token = self._token if isinstance(self._token, str) else await self._token(ref.team_id)
        if not token:
            log.warning("a media link names a file of a workspace without an installation; refused")
            return web.Response(status=404, text="This media link's workspace no longer has the app.")
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with self._session.get(
                URL(ref.url), headers=headers, allow_redirects=False, timeout=self._timeout
            ) as upstream:
                # Slack serves a file to its bot token directly; a redirect goes to a sign-in page.
                if upstream.status != 200:
                    log.warning("Slack answered HTTP %s for a reply's file", upstream.status)
                    return web.Response(status=502, text="Slack did not hand over the file.")
                if (upstream.content_length or 0) > MAX_FILE_BYTES:
                    return web.Response(status=413, text="The file is larger than a text may carry.")
                kind = ref.mimetype or upstream.content_type or "application/octet-stream"
                response = web.StreamResponse(headers={"Content-Type": kind})
                if upstream.content_length is not None:
                    response.content_length = upstream.content_length
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(_CHUNK):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError) as err:
            log.warning("could not read a reply's file from Slack: %s", type(err).__name__)
            return web.Response(status=502, text="Slack did not hand over the file.")

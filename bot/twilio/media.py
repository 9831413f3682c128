"""Fetching a text's attachments (`MediaUrl{N}`) without leaking the account's credentials.

The credentials go only to Twilio's API host (the origin of TWILIO_API_URL); Twilio answers with a
redirect to its storage, which is followed without them. Each fetch is bounded in time and in size, and
every way it can fail comes back as a short reason for a note in the thread, never as an exception.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Final

import aiohttp
from yarl import URL

from bot.twilio.models import Credentials

__all__ = ["MAX_MEDIA_BYTES", "FetchedMedia", "MediaFetcher"]

MAX_MEDIA_BYTES: Final = 5 * 1024 * 1024
MAX_REDIRECTS: Final = 3
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True)
class FetchedMedia:
    """One attachment: its bytes, or why there are none (`problem`), with the type and size known."""

    content_type: str
    data: bytes | None
    size: int | None
    problem: str | None = None


class MediaFetcher:
    """Downloads inbound media over the application's one session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        *,
        timeout: float = 15.0,
        max_bytes: int = MAX_MEDIA_BYTES,
    ) -> None:
        self._session = session
        self._origin = URL(api_url).origin()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._seconds = timeout
        self._max = max_bytes

    def is_twilios(self, url: str) -> bool:
        """Whether `url` is on Twilio's API host (the only place the credentials may go)."""
        try:
            parsed = URL(url)
        except ValueError:
            return False
        return parsed.is_absolute() and parsed.origin() == self._origin and parsed.user is None

    async def fetch(self, creds: Credentials, url: str, content_type: str) -> FetchedMedia:
        """The attachment at `url`, at most `max_bytes`; a reason instead when it cannot be had."""
        if not self.is_twilios(url):
            return FetchedMedia(
                content_type, None, None, "its link is not on Twilio's API host, so not fetched"
            )
        try:
            return await asyncio.wait_for(self._fetch(creds, url, content_type), self._seconds)
        except TimeoutError:
            return FetchedMedia(content_type, None, None, f"fetching it took longer than {self._seconds:g} s")
        except (aiohttp.ClientError, ValueError) as err:
            return FetchedMedia(content_type, None, None, f"fetching it failed ({type(err).__name__})")

    async def _fetch(self, creds: Credentials, url: str, content_type: str) -> FetchedMedia:
        target = URL(url)
        basic = base64.b64encode(f"{creds.username}:{creds.secret}".encode()).decode("ascii")
        headers = {"Authorization": f"Basic {basic}"}
        for _ in range(MAX_REDIRECTS + 1):
            async with self._session.get(
                target, headers=headers, allow_redirects=False, timeout=self._timeout
            ) as resp:
                if resp.status in {301, 302, 303, 307, 308}:
                    location = resp.headers.get("Location")
                    if not location:
                        return FetchedMedia(content_type, None, None, "Twilio redirected it nowhere")
                    target = target.join(URL(location))
                    # Storage behind the redirect takes a signed link, not the account's credentials.
                    if target.origin() != self._origin:
                        headers = {}
                    continue
                if resp.status != 200:
                    return FetchedMedia(content_type, None, None, f"Twilio answered HTTP {resp.status}")
                kind = resp.headers.get("Content-Type", content_type).split(";")[0].strip() or content_type
                declared = resp.content_length
                if declared is not None and declared > self._max:
                    return FetchedMedia(kind, None, declared, _too_big(declared, self._max))
                data = bytearray()
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    data.extend(chunk)
                    if len(data) > self._max:
                        return FetchedMedia(kind, None, declared, _too_big(declared or len(data), self._max))
                return FetchedMedia(kind, bytes(data), len(data))
        return FetchedMedia(content_type, None, None, "Twilio redirected it too many times")


def _too_big(size: int, most: int) -> str:
    return f"it is {size / 1_048_576:.1f} MB, more than the {most / 1_048_576:g} MB the bot uploads"

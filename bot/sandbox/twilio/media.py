"""Inbound media: the files a phone attaches to a text, served the way Twilio serves them.

A text's ``MediaUrl{N}`` is ``{sim}/2010-04-01/Accounts/AC…/Messages/MM…/Media/ME…``. That URL wants the
account's Basic auth (Twilio's "enforce HTTP auth on media" setting) and answers ``307`` to a "CDN" on a
port of its own, a different origin, like Twilio's redirect to its storage. The CDN serves the bytes to
anyone holding the link and, like S3 with a presigned URL, refuses (400, ``InvalidArgument``) a request
that also carries an ``Authorization`` header: a client that forwards the account's credentials across
the redirect fails loudly. `media_fetches` records each fetch and whether credentials came with it.
A medium made with ``hang=True`` never answers on the CDN (until the simulator stops).
``…/Media.json`` and ``…/Media/ME….json`` give the Media resources as JSON.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from aiohttp import web

from bot.sandbox.twilio.accounts import Accounts
from bot.sandbox.twilio.errors import TwilioApiError
from bot.sandbox.twilio.formats import API_PREFIX, rfc2822

_MESSAGE = rf"{API_PREFIX}/Accounts/(?P<account>[^/]+)/Messages/(?P<message>[^/]+)"
_MEDIA_PATH = re.compile(rf"{_MESSAGE}/Media/(?P<sid>[^/.]+)")
_MEDIA_JSON_PATH = re.compile(rf"{_MESSAGE}/Media/(?P<sid>[^/]+)\.json")
_MEDIA_LIST_PATH = re.compile(rf"{_MESSAGE}/Media\.json")
MAX_INBOUND_MEDIA: Final = 10
_S3_TWO_AUTHS: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code>'
    "<Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
    "string parameter or the Authorization header should be specified</Message>"
    "<ArgumentName>Authorization</ArgumentName></Error>"
)
_S3_DENIED: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Request has expired or the link is wrong</Message></Error>"
)


@dataclass(frozen=True)
class InboundMedia:
    """A file a phone attaches to a text; with `hang` its URL never answers."""

    content_type: str
    data: bytes
    hang: bool = False


@dataclass
class _Media:
    sid: str
    account_sid: str
    message_sid: str
    content_type: str
    data: bytes
    hang: bool
    date_created: datetime
    cdn_token: str


@dataclass
class MediaFetch:
    """One request for inbound media: at the API (Basic auth, then 307) or at the CDN (the bytes)."""

    where: Literal["api", "cdn"]
    media_sid: str | None
    status: int | None  # None: it hung until the simulator stopped
    authorization: bool  # whether the request carried an Authorization header
    time: datetime

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["time"] = self.time.isoformat()
        return data


class InboundMediaStore(Accounts):
    """Stores inbound media, answers its API routes, and runs the CDN."""

    def _store_media(self, account_sid: str, message_sid: str, media: InboundMedia) -> _Media:
        if not isinstance(media.content_type, str) or "/" not in media.content_type:
            raise ValueError("media content_type must be a MIME type like image/jpeg")
        if not isinstance(media.data, bytes):
            raise ValueError("media data must be bytes")
        stored = _Media(
            sid="ME" + secrets.token_hex(16),
            account_sid=account_sid,
            message_sid=message_sid,
            content_type=media.content_type,
            data=media.data,
            hang=media.hang,
            date_created=self.clock.now(),
            cdn_token=secrets.token_urlsafe(24),
        )
        self._media[stored.sid] = stored
        self._cdn[stored.cdn_token] = stored.sid
        return stored

    def _media_url(self, media: _Media) -> str:
        message = f"{API_PREFIX}/Accounts/{media.account_sid}/Messages/{media.message_sid}"
        return f"{self.url}{message}/Media/{media.sid}"

    @property
    def cdn_url(self) -> str:
        """The CDN's base URL (another port: another origin)."""
        if self._cdn_port is None:
            raise RuntimeError("TwilioSimulator has not been started")
        return f"http://{self.host}:{self._cdn_port}"

    def _media_route(
        self, method: str, path: str, credentials: tuple[str, str] | None, authorization: bool
    ) -> web.Response | None:
        """The answer for a media route; None when `path` is not one."""
        for pattern in (_MEDIA_PATH, _MEDIA_JSON_PATH, _MEDIA_LIST_PATH):
            if match := pattern.fullmatch(path):
                break
        else:
            return None
        if method != "GET":
            raise TwilioApiError(20004, f"Method {method} not allowed on {path}")
        sid = match.groupdict().get("sid")
        fetch = MediaFetch("api", sid, 401, authorization, self.clock.now())
        if pattern is _MEDIA_PATH:
            self.media_fetches.append(fetch)
        account = self._authenticate(credentials, match["account"])
        found = [
            m
            for m in self._media.values()
            if m.account_sid == account.sid and m.message_sid == match["message"]
        ]
        if pattern is _MEDIA_LIST_PATH:
            return web.json_response(self._media_list_json(path, found))
        media = next((m for m in found if m.sid == sid), None)
        if media is None:
            fetch.status = 404
            raise TwilioApiError(20404, f"The requested resource {path} was not found")
        if pattern is _MEDIA_JSON_PATH:
            return web.json_response(self._media_json(media))
        fetch.status = 307
        return web.Response(status=307, headers={"Location": f"{self.cdn_url}/{media.cdn_token}"})

    @staticmethod
    def _media_json(media: _Media) -> dict[str, Any]:
        base = f"{API_PREFIX}/Accounts/{media.account_sid}/Messages/{media.message_sid}/Media"
        return {
            "account_sid": media.account_sid,
            "content_type": media.content_type,
            "date_created": rfc2822(media.date_created),
            "date_updated": rfc2822(media.date_created),
            "parent_sid": media.message_sid,
            "sid": media.sid,
            "uri": f"{base}/{media.sid}.json",
        }

    def _media_list_json(self, path: str, media: list[_Media]) -> dict[str, Any]:
        uri = f"{path}?PageSize=50&Page=0"
        return {
            "media_list": [self._media_json(m) for m in media],
            "end": max(len(media) - 1, 0),
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }

    # ----- the CDN ---------------------------------------------------------------------------------

    async def _start_cdn(self) -> None:
        app = web.Application()
        app.router.add_get("/{token}", self._handle_cdn)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, 0).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._cdn_runner = runner
        self._cdn_port = int(runner.addresses[0][1])

    async def _stop_cdn(self) -> None:
        if self._cdn_runner is not None:
            runner, self._cdn_runner = self._cdn_runner, None
            await runner.cleanup()

    async def _handle_cdn(self, request: web.Request) -> web.Response:
        sid = self._cdn.get(request.match_info["token"])
        authorization = "Authorization" in request.headers
        fetch = MediaFetch("cdn", sid, None, authorization, self.clock.now())
        self.media_fetches.append(fetch)
        media = self._media.get(sid) if sid else None
        if authorization:
            fetch.status = 400
            return web.Response(status=400, text=_S3_TWO_AUTHS, content_type="application/xml")
        if media is None:
            fetch.status = 403
            return web.Response(status=403, text=_S3_DENIED, content_type="application/xml")
        if media.hang:
            await self._stopping.wait()
            return web.Response(status=503)
        fetch.status = 200
        return web.Response(body=media.data, content_type=media.content_type)

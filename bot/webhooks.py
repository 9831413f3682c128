"""The Twilio door: POST /twilio/inbound, signed by the account's auth token. Thin: check, hand over, answer.

The signature is checked first, against PUBLIC_URL + path + query when PUBLIC_URL is set (the URL Twilio
was given), else against the URL as received. An unknown AccountSid or a wrong signature gets 403 and
nothing is stored. A signed text is stored once (by MessageSid) before the answer, so a text Twilio saw
answered is never lost; showing it in Slack happens after, in the order texts arrived.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web

from bot.conversations import INBOUND_PATH, Conversations, InboundText, inbound_problem
from bot.media_links import MEDIA_PATH, FileRef, MediaLinks
from bot.twilio.signature import SIGNATURE_HEADER, validate

__all__ = ["CONVERSATIONS", "EMPTY_TWIML", "MEDIA", "add_routes", "verified_twilio_form"]

log = logging.getLogger(__name__)

CONVERSATIONS: web.AppKey[Conversations] = web.AppKey("conversations")


class FileSource(Protocol):
    """Where a media link's file is read from (the Slack door's SlackFiles)."""

    async def respond(self, request: web.Request, ref: FileRef) -> web.StreamResponse:
        """Stream the file named by `ref`, or answer why not."""


MEDIA: web.AppKey[tuple[MediaLinks, FileSource]] = web.AppKey("media_links")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Twilio's form fields are short; a body far above an SMS's 1600 characters is not Twilio's.
MAX_FORM_BYTES = 256 * 1024


def _signed_url(request: web.Request, public_url: str | None) -> str:
    if public_url:
        return public_url.rstrip("/") + request.path_qs
    return str(request.url)


async def verified_twilio_form(
    request: web.Request, conversations: Conversations, public_url: str | None
) -> Mapping[str, str] | None:
    """The form of a request Twilio signed with a stored account's auth token; None otherwise."""
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        return None
    try:
        posted = await request.post()
    except (ValueError, web.HTTPException):
        return None
    pairs = [(name, value) for name, value in posted.items() if isinstance(value, str)]
    form = dict(pairs)
    signature = request.headers.get(SIGNATURE_HEADER, "")
    account_sid = form.get("AccountSid", "")
    if not signature or not account_sid.startswith("AC") or len(account_sid) != 34:
        return None
    url = _signed_url(request, public_url)
    for token in await conversations.auth_tokens(account_sid):
        if validate(token, url, pairs, signature):
            return form
    return None


def _twiml() -> web.Response:
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


def add_routes(app: web.Application, public_url: str | None) -> None:
    """Mount Twilio's messaging webhook on `app` (which holds the Conversations under CONVERSATIONS)."""

    async def inbound(request: web.Request) -> web.Response:
        try:
            return await _inbound(request)
        except Exception:
            # Our side failed (the database, the key): Twilio retries or calls its fallback on a 503.
            log.exception("could not take a text from Twilio")
            return web.Response(status=503, text="The bot cannot take texts right now; try again.")

    async def _inbound(request: web.Request) -> web.Response:
        conversations = request.app[CONVERSATIONS]
        form = await verified_twilio_form(request, conversations, public_url)
        if form is None:
            log.warning("refused a request to %s: not signed by a stored Twilio account", INBOUND_PATH)
            return web.Response(status=403, text="Forbidden: not signed by a Twilio account set up here.")
        problem = inbound_problem(form)
        if problem is not None:
            # Signed, so Twilio's; retrying would not mend it. Logged and answered so it is not retried.
            log.warning("a signed inbound webhook cannot be a text: %s", problem)
            return _twiml()
        await conversations.receive(InboundText.from_form(form))
        return _twiml()

    async def media(request: web.Request) -> web.StreamResponse:
        found = request.app.get(MEDIA)
        ref = found[0].read(request.match_info["token"]) if found else None
        if found is None or ref is None:
            return web.Response(status=404, text="This media link is unknown or has expired.")
        return await found[1].respond(request, ref)

    app.router.add_post(INBOUND_PATH, inbound)
    app.router.add_get(MEDIA_PATH + "{token}", media)

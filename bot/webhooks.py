"""The Twilio door: webhooks Twilio POSTs to the bot, each checked before anything is read out of it.

`verified_twilio_form` is the one check every Twilio webhook goes through: a form body of at most
256 KB, signed (`X-Twilio-Signature`) with the auth token of a stored account named by its `AccountSid`,
over PUBLIC_URL + path + query (or the URL as received when PUBLIC_URL is unset). Anything else gets
403 (or 413/400 for a body that is too big or not a form) and nothing is done. Handlers stay thin:
check, parse, call a service, answer.

`POST /twilio/inbound` (a text to one of our numbers) stores the text once by MessageSid before it
answers `<Response/>`, so a text Twilio saw answered is never lost; showing it in Slack happens after, in
the order texts arrived. `GET /media/{token}` serves a reply's file to Twilio through a sealed link.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from bot.conversations import INBOUND_PATH, InboundText, inbound_problem
from bot.media_links import MEDIA_PATH, FileRef, MediaLinks
from bot.services import Services
from bot.status import StatusReport, parse_status_report
from bot.twilio.signature import SIGNATURE_HEADER, validate
from bot.workspace import mask_sid

__all__ = [
    "EMPTY_TWIML",
    "MAX_WEBHOOK_BODY",
    "MEDIA",
    "STATUS_PATH",
    "VerifiedForm",
    "add_routes",
    "twilio_inbound",
    "twilio_status",
    "use_services",
    "verified_twilio_form",
    "webhook_url",
]

log = logging.getLogger(__name__)

# Far above any real webhook (an SMS body is at most 1,600 characters), so an odd one is kept, not refused.
MAX_WEBHOOK_BODY: Final = 256 * 1024
STATUS_PATH: Final = "/twilio/status"
SERVICES: web.AppKey[Services] = web.AppKey("twilio_webhook_services", Services)
PUBLIC_URL: web.AppKey[str] = web.AppKey("twilio_webhook_public_url", str)

EMPTY_TWIML: Final = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


class FileSource(Protocol):
    """Where a media link's file is read from (the Slack door's SlackFiles)."""

    async def respond(self, request: web.Request, ref: FileRef) -> web.StreamResponse:
        """Stream the file named by `ref`, or answer why not."""


MEDIA: web.AppKey[tuple[MediaLinks, FileSource]] = web.AppKey("media_links")

_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_FORM = "application/x-www-form-urlencoded"
# Accounts whose webhooks were refused for want of an auth token: said once per app, not per request.
TOLD_NO_TOKEN: web.AppKey[set[str]] = web.AppKey("twilio_webhook_told_no_token", set)


@dataclass(frozen=True)
class VerifiedForm:
    """A webhook form Twilio signed for a stored account: its Account SID and its fields (first values)."""

    account_sid: str
    fields: Mapping[str, str] = field(repr=False)


def _text(status: int, sentence: str) -> web.Response:
    return web.Response(status=status, text=sentence)


def webhook_url(request: web.Request, public_url: str | None) -> str:
    """The URL Twilio signed: PUBLIC_URL + path + query as sent, or the URL as this server received it."""
    if public_url:
        return public_url.rstrip("/") + request.raw_path
    return f"{request.scheme}://{request.host}{request.raw_path}"


async def _read_body(request: web.Request) -> bytes | web.Response:
    too_big = _text(413, f"The body is larger than {MAX_WEBHOOK_BODY // 1024} KB; nothing was done.")
    declared = request.content_length
    if declared is not None and declared > MAX_WEBHOOK_BODY:
        return too_big
    body = bytearray()
    async for chunk in request.content.iter_any():  # however the body is split, and without a length
        body += chunk
        if len(body) > MAX_WEBHOOK_BODY:
            return too_big
    return bytes(body)


async def verified_twilio_form(request: web.Request, services: Services) -> VerifiedForm | web.Response:
    """The request's form if Twilio signed it for a stored account, else the answer to give (403/413/400).

    Checked before anything is stored or posted. The signature is compared in constant time against
    every auth token stored for the form's AccountSid (several workspaces may store one account), over
    the PUBLIC_URL that `add_routes` put on the app (or the URL as received). Every Twilio webhook
    goes through it, by `_signed_webhook`.
    """
    body = await _read_body(request)
    if isinstance(body, web.Response):
        return body
    if request.content_type != _FORM:
        return _text(400, "Twilio webhooks are form posts (application/x-www-form-urlencoded).")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return _text(400, "The form is not UTF-8 text; nothing was done.")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    account_sid = fields.get("AccountSid", "")
    if not signature or not _ACCOUNT_SID.fullmatch(account_sid):
        return _text(403, "This request is not signed by Twilio for an account set up here.")
    keys = await services.workspace.webhook_tokens(account_sid)
    if keys.stored and not keys.tokens:
        told = request.app.get(TOLD_NO_TOKEN)
        if told is None or account_sid not in told:
            if told is not None:
                told.add(account_sid)
            log.warning(
                "refused Twilio webhooks for account %s: it was set up with an API key and no auth token "
                "for webhooks, so their signatures cannot be checked; add the auth token with /twilio setup "
                "(or `accounts add --api-key … --webhook-token`)",
                mask_sid(account_sid),
            )
        return _text(403, "This request is not signed by Twilio for an account set up here.")
    url = webhook_url(request, request.app.get(PUBLIC_URL))
    # Every stored token is tried, so the time taken says nothing about which one (if any) matched.
    verdicts = [validate(token, url, pairs, signature) for token in keys.tokens]
    if not any(verdicts):
        log.info("refused a Twilio webhook with a wrong signature (account %s)", mask_sid(account_sid))
        return _text(403, "This request is not signed by Twilio for an account set up here.")
    return VerifiedForm(account_sid, fields)


_Handler = Callable[[Services, VerifiedForm], Awaitable[web.Response]]


def _signed_webhook(
    failure: str, answer: str
) -> Callable[[_Handler], Callable[[web.Request], Awaitable[web.Response]]]:
    """A Twilio webhook whose handler gets the services and the verified form.

    The wrapper answers 503 while the bot starts, the verifier's refusal for an unsigned request, and
    503 with `answer` (logging `failure`) when the handler fails.
    """

    def wrap(handle: _Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def webhook(request: web.Request) -> web.Response:
            services = request.app.get(SERVICES)
            if services is None:
                return _text(503, "The bot is starting; try again in a moment.")
            try:
                form = await verified_twilio_form(request, services)
                if isinstance(form, web.Response):
                    return form
                return await handle(services, form)
            except Exception:
                # Our side failed (the database, the key), not the request: say so, never with a
                # traceback; Twilio retries or calls its fallback on a 503.
                log.exception(failure)
                return _text(503, answer)

        webhook.__name__ = webhook.__qualname__ = handle.__name__
        webhook.__doc__ = handle.__doc__
        return webhook

    return wrap


@_signed_webhook(
    "could not handle a status callback",
    "The bot could not handle this status report just now; nothing was changed.",
)
async def twilio_status(services: Services, form: VerifiedForm) -> web.Response:
    """POST /twilio/status: a message's status changed. 204 at once; its card follows (coalesced)."""
    report = parse_status_report(form.account_sid, form.fields)
    if isinstance(report, str):
        return _text(400, report)
    if isinstance(report, StatusReport):
        await services.status.report(report)
        await services.conversations.status(report)  # a reply's reaction follows its status
    return web.Response(status=204)


@_signed_webhook("could not take a text from Twilio", "The bot cannot take texts right now; try again.")
async def twilio_inbound(services: Services, form: VerifiedForm) -> web.Response:
    """POST /twilio/inbound: a text to one of our numbers. Stored once, answered `<Response/>` at once."""
    problem = inbound_problem(form.fields)
    if problem is not None:
        # Signed, so Twilio's; retrying would not mend it. Logged and answered so it is not retried.
        log.warning("a signed inbound webhook cannot be a text: %s", problem)
    else:
        await services.conversations.receive(InboundText.from_form(form.fields))
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


async def media_link(request: web.Request) -> web.StreamResponse:
    """GET /media/{token}: the file a reply carried, for Twilio to fetch; 404 unless the bot made the link."""
    found = request.app.get(MEDIA)
    ref = found[0].read(request.match_info["token"]) if found else None
    if found is None or ref is None:
        return _text(404, "This media link is unknown or has expired.")
    return await found[1].respond(request, ref)


def add_routes(app: web.Application, public_url: str | None) -> None:
    """Mount the Twilio webhooks on `app`; `use_services` gives them the services once they exist."""
    if public_url:
        app[PUBLIC_URL] = public_url
    app[TOLD_NO_TOKEN] = set()
    app.router.add_post(STATUS_PATH, twilio_status)
    app.router.add_post(INBOUND_PATH, twilio_inbound)
    app.router.add_get(MEDIA_PATH + "{token}", media_link)


def use_services(app: web.Application, services: Services) -> None:
    """Hand the webhooks the process's services (at start-up, once they are built)."""
    app[SERVICES] = services

"""Texts "from a phone" to one of our numbers, delivered to the bot as Twilio's messaging webhook.

`await sim.receive_text("+15550001234", "+15557654321", "hello", media=[InboundMedia("image/png", b…)])`
(or ``POST /_sim/inbound``) stores an inbound Message (``direction: inbound``, ``SM…``, ``MM…`` with
media) and sends Twilio's form (``MessageSid, SmsMessageSid, SmsSid, AccountSid, From, To, Body,
NumMedia, NumSegments, MediaUrl{N}, MediaContentType{N}, SmsStatus, ApiVersion``, and ``ProfileName``
and ``WaId`` for WhatsApp, ``MessagingServiceSid`` for a service number, ``OptOutType`` for a keyword)
to where the number sends its texts (`phone_numbers`), signed, with Twilio's timeouts and one retry
when the connection fails or the answer is late (`sim.inbound_policy`; URL fragments override it).
Every delivery and the bot's answer is in `inbound_webhooks`; `redeliver(sid)` sends one again, as
Twilio sometimes does. A TwiML ``<Message>`` in the answer is sent back to the phone.

Opt-out keywords (SMS only, the whole body, any case), as Twilio's defaults for long codes: STOP,
STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT opt the sender out of that number (creates to
them from it then fail with 21610) and START, YES, UNSTOP opt them back in; HELP and INFO get help.
Twilio answers each with its own auto-reply, stored as an ``outbound-reply`` message, and still
forwards the text with ``OptOutType`` (STOP, START, HELP).

`phone_messages(number)` (``GET /_sim/phone?number=…``) is what that phone got from our numbers, for a
phone panel: every outbound message to it with its status (only ``delivered`` ones have arrived).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from xml.etree import ElementTree

from aiohttp import web

from bot.sandbox.twilio.accounts import _Account
from bot.sandbox.twilio.control import _bad_control, _bad_control_on, _json_object, sim_route
from bot.sandbox.twilio.errors import TwilioApiError
from bot.sandbox.twilio.formats import _E164, _WHATSAPP, API_VERSION, _strip_channel, segment_count
from bot.sandbox.twilio.media import MAX_INBOUND_MEDIA, InboundMedia, InboundMediaStore
from bot.sandbox.twilio.messages import MessagesApi, StoredMessage
from bot.sandbox.twilio.phone_numbers import PhoneNumbers
from bot.sandbox.twilio.webhooks import Webhook, post_webhook

STOP_WORDS: Final = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS: Final = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS: Final = frozenset({"HELP", "INFO"})
AUTO_REPLIES: Final = {
    "STOP": "You have successfully been unsubscribed. You will not receive any more messages from this "
    "number. Reply START to resubscribe.",
    "START": "You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
    "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}


@dataclass
class InboundText:
    """What a text from a phone did: the message stored, any opt-out, and the webhook to the bot."""

    message_sid: str
    account_sid: str
    from_: str
    to: str
    webhook: Webhook
    opt_out_type: str | None = None
    auto_reply_sid: str | None = None  # Twilio's own answer to a keyword
    reply_sids: list[str] = field(default_factory=list)  # TwiML <Message> answers the bot gave

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the answer of ``POST /_sim/inbound``)."""
        data = dataclasses.asdict(self)
        data["from"] = data.pop("from_")
        data["webhook"] = self.webhook.to_json()
        return data


def _keyword(body: str) -> str | None:
    word = body.strip().upper()
    if word in STOP_WORDS:
        return "STOP"
    if word in START_WORDS:
        return "START"
    return "HELP" if word in HELP_WORDS else None


def _twiml_messages(answer: str) -> list[str]:
    if not answer.lstrip().startswith("<"):
        return []
    try:
        root = ElementTree.fromstring(answer)  # noqa: S314 - the bot's own answer, over loopback
    except ElementTree.ParseError:
        return []
    if root.tag != "Response":
        return []
    return [(m.findtext("Body") or m.text or "").strip() for m in root.iter("Message")]


class InboundTexts(PhoneNumbers, InboundMediaStore, MessagesApi):
    """Texts from phones to our numbers, opt-outs, and what each phone received."""

    @property
    def inbound_webhooks(self) -> list[Webhook]:
        """Every inbound-text webhook, in the order they were sent."""
        return [w for w in self.webhooks if w.kind == "inbound"]

    @property
    def opted_out(self) -> set[tuple[str, str]]:
        """(our number, their number) pairs where the phone has opted out."""
        return {(ours, theirs) for _, ours, theirs in self._opted_out}

    async def receive_text(
        self,
        from_: str,
        to: str,
        body: str = "",
        *,
        media: Sequence[InboundMedia] = (),
        profile_name: str | None = None,
        wait: bool = True,
    ) -> InboundText:
        """A phone at `from_` texts our number `to`; returns once the bot answered (unless not `wait`).

        Raises ValueError, in words, for a number that is not ours, a bad sender or bad media.
        """
        account, whatsapp = self._check_inbound(from_, to, body, media)
        if self._session is None:
            raise RuntimeError("start() the simulator first")
        now = self.clock.now()
        keyword = None if whatsapp else _keyword(body)
        message = self._store(account, to, from_, body, "inbound", media=bool(media))
        stored = [self._store_media(account.sid, message.sid, m) for m in media]
        message.media_urls = tuple(self._media_url(m) for m in stored)
        target = self._inbound_target(account, to)
        if target.service_sid is not None:
            message.messaging_service_sid = target.service_sid
        text = InboundText(
            message.sid, account.sid, from_, to, Webhook("inbound", None, "POST", [], "", "", now)
        )
        if keyword is not None:
            text.opt_out_type = keyword
            pair = (account.sid, _strip_channel(to), _strip_channel(from_))
            if keyword == "STOP":
                self._opted_out.add(pair)
            elif keyword == "START":
                self._opted_out.discard(pair)
            text.auto_reply_sid = self._store(account, from_, to, AUTO_REPLIES[keyword], "outbound-reply").sid
        form = [
            ("ToCountry", "US"),
            ("SmsMessageSid", message.sid),
            ("NumMedia", str(len(stored))),
            ("SmsSid", message.sid),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", to),
            ("NumSegments", str(segment_count(body))),
            ("MessageSid", message.sid),
            ("AccountSid", account.sid),
            ("From", from_),
            ("ApiVersion", API_VERSION),
        ]
        for index, item in enumerate(stored):
            form += [
                (f"MediaContentType{index}", item.content_type),
                (f"MediaUrl{index}", self._media_url(item)),
            ]
        if whatsapp:
            form += [("WaId", _strip_channel(from_).lstrip("+")), ("MessageType", "text")]
            if profile_name:
                form.append(("ProfileName", profile_name))
        if target.service_sid is not None:
            form.append(("MessagingServiceSid", target.service_sid))
        if keyword is not None:
            form.append(("OptOutType", keyword))
        text.webhook = Webhook("inbound", target.url, target.method, form, account.sid, message.sid, now)
        await self._send_inbound(text, account, wait=wait)
        return text

    async def redeliver(self, message_sid: str, *, wait: bool = True) -> Webhook:
        """Send an inbound text's webhook again, newly signed (Twilio may deliver one twice)."""
        first = next((w for w in self.inbound_webhooks if w.message_sid == message_sid), None)
        if first is None:
            raise LookupError(f"no inbound text {message_sid}")
        again = Webhook(
            "inbound",
            first.url,
            first.method,
            list(first.form),
            first.account_sid,
            message_sid,
            self.clock.now(),
        )
        text = InboundText(message_sid, first.account_sid, "", "", again)
        await self._send_inbound(text, self._accounts[first.account_sid], wait=wait)
        return again

    async def settle_inbound(self) -> None:
        """Wait until every inbound webhook in flight is done."""
        while self._inbound_tasks:
            await asyncio.gather(*list(self._inbound_tasks), return_exceptions=True)

    def phone_messages(self, number: str, *, include_sent: bool = False) -> list[dict[str, Any]]:
        """What the phone at `number` received from our numbers, oldest first (and what it sent, if asked)."""
        bare, now, out = _strip_channel(number), self.clock.now(), list[dict[str, Any]]()
        every = sorted(
            (m for ms in self._by_account.values() for m in ms if not m.deleted), key=lambda m: m.seq
        )
        for message in every:
            inbound = message.direction == "inbound"
            theirs = message.requested_from if inbound else message.to
            if _strip_channel(theirs or "") != bare or (inbound and not include_sent):
                continue
            state = message.state(now)
            out.append(
                {
                    "sid": message.sid,
                    "direction": "sent" if inbound else "received",
                    "from": state.from_,
                    "to": message.to,
                    "body": message.body,
                    "num_media": len(message.media_urls),
                    "status": state.status,
                    "arrived": inbound or state.status in ("delivered", "read"),
                    "date_created": message.date_created.isoformat(),
                }
            )
        return out

    # ----- helpers ---------------------------------------------------------------------------------

    def _check_inbound(
        self, from_: str, to: str, body: str, media: Sequence[InboundMedia]
    ) -> tuple[_Account, bool]:
        if not isinstance(from_, str) or not _E164.fullmatch(_strip_channel(from_)):
            raise ValueError(f"the sender must be an E.164 number like +15551230000, not {from_!r}")
        if not isinstance(to, str) or not isinstance(body, str):
            raise ValueError("to and body must be strings")
        whatsapp = to.startswith(_WHATSAPP)
        if from_.startswith(_WHATSAPP) != whatsapp:
            raise ValueError("from and to must both be whatsapp: addresses, or neither")
        account = self._account_owning(to)
        if account is None:
            raise ValueError(f"{to} is not a number of any account in the simulator")
        if len(media) > MAX_INBOUND_MEDIA:
            raise ValueError(f"a text carries at most {MAX_INBOUND_MEDIA} media")
        if not body and not media:
            raise ValueError("a text needs a body or media")
        return account, whatsapp

    def _store(
        self, account: _Account, to: str, from_: str, body: str, direction: str, *, media: bool = False
    ) -> StoredMessage:
        return self._keep(
            account,
            media=media,
            to=to,
            requested_from=from_,
            sender=from_,
            body=body,
            media_urls=(),
            messaging_service_sid=None,
            date_created=self.clock.now(),
            direction=direction,
        )

    async def _send_inbound(self, text: InboundText, account: _Account, *, wait: bool) -> None:
        # A task of its own, so that a caller that does not wait still gets it delivered (stop() cancels it).
        task = asyncio.create_task(self._deliver_inbound(text, account))
        self._inbound_tasks.add(task)
        task.add_done_callback(self._inbound_tasks.discard)
        if wait:
            await task

    async def _deliver_inbound(self, text: InboundText, account: _Account) -> Webhook:
        record = text.webhook
        self.webhooks.append(record)
        if record.url is None or self._session is None:
            record.note = "nowhere to send it: the number (or its Messaging Service) has no inbound URL"
            record.done = True
            return record
        async with self._webhook_slots:
            await post_webhook(self._session, record, account.auth_token, self.inbound_policy)
        last = record.attempts[-1] if record.attempts else None
        if last is not None and last.status == 200 and text.to:
            for reply in _twiml_messages(last.answer):
                text.reply_sids.append(self._store(account, text.from_, text.to, reply, "outbound-reply").sid)
        return record

    # ----- /_sim/ ----------------------------------------------------------------------------------

    @sim_route("POST", "/_sim/inbound")
    async def _sim_inbound(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        with _bad_control_on(TypeError, ValueError):
            media = [_media_from_json(m) for m in data.get("media") or []]
            text = await self.receive_text(
                str(data.get("from", "")),
                str(data.get("to", "")),
                str(data.get("body") or ""),
                media=media,
                profile_name=data.get("profile_name") or None,
                wait=data.get("wait", True) is not False,
            )
        return web.json_response(text.to_json(), status=201)

    @sim_route("POST", "/_sim/inbound/{sid}/redeliver")
    async def _sim_redeliver(self, request: web.Request) -> web.Response:
        with _bad_control_on(LookupError):
            webhook = await self.redeliver(request.match_info["sid"])
        return web.json_response(webhook.to_json())

    @sim_route("GET", "/_sim/webhooks")
    async def _sim_webhooks(self, request: web.Request) -> web.Response:
        kind = request.query.get("kind")
        return web.json_response([w.to_json() for w in self.webhooks if kind in (None, w.kind)])

    @sim_route("GET", "/_sim/phone")
    async def _sim_phone(self, request: web.Request) -> web.Response:
        number = request.query.get("number", "")
        if not _E164.fullmatch(_strip_channel(number)):
            raise _bad_control("number must be E.164, like +15551230000 (write + as %2B in a query)")
        return web.json_response(self.phone_messages(number, include_sent=request.query.get("sent") == "1"))

    @sim_route("GET", "/_sim/media-fetches")
    async def _sim_media_fetches(self, request: web.Request) -> web.Response:
        return web.json_response([f.to_json() for f in self.media_fetches])

    @sim_route("POST", "/_sim/sms-url")
    async def _sim_sms_url(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        url = data.get("url")
        if not isinstance(url, str | None):
            raise _bad_control("url must be a string or null")
        with _bad_control_on(LookupError, TwilioApiError):
            self.set_sms_url(str(data.get("number", "")), url, str(data.get("method", "POST")))
        return web.json_response(self.phone_number(str(data["number"])))


def _media_from_json(item: Any) -> InboundMedia:
    if not isinstance(item, dict) or not isinstance(item.get("content_type"), str):
        raise ValueError("each media item needs a content_type and data_base64 (or text)")
    if isinstance(item.get("text"), str):
        data = item["text"].encode()
    else:
        try:
            data = base64.b64decode(str(item.get("data_base64", "")), validate=True)
        except binascii.Error as err:
            raise ValueError("media data_base64 is not base64") from err
    return InboundMedia(item["content_type"], data, hang=item.get("hang") is True)

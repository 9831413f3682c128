"""The Twilio simulator's phone side: IncomingPhoneNumbers, texts from phones, opt-outs, media, phone view."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botproc import unused_port
from sandbox_helpers import OTHER, OTHER_TOKEN, START, serve
from twilio.request_validator import RequestValidator

from bot.sandbox.twilio import (
    AUTO_REPLIES,
    DEFAULT_FROM,
    DEFAULT_SERVICE_SID,
    SANDBOX_ACCOUNT_SID,
    SERVICE_NUMBER,
    InboundMedia,
    SimClock,
    TwilioSimulator,
    WebhookPolicy,
)

PHONE = "+15550001234"
NUMBERS = f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/IncomingPhoneNumbers.json"
# Every property of api.v2010.account.incoming_phone_number in Twilio's spec (twilio_api_v2010.json).
NUMBER_FIELDS = {
    "account_sid",
    "address_sid",
    "address_requirements",
    "api_version",
    "beta",
    "capabilities",
    "date_created",
    "date_updated",
    "friendly_name",
    "identity_sid",
    "phone_number",
    "origin",
    "sid",
    "sms_application_sid",
    "sms_fallback_method",
    "sms_fallback_url",
    "sms_method",
    "sms_url",
    "status_callback",
    "status_callback_method",
    "trunk_sid",
    "uri",
    "voice_receive_mode",
    "voice_application_sid",
    "voice_caller_id_lookup",
    "voice_fallback_method",
    "voice_fallback_url",
    "voice_method",
    "voice_url",
    "emergency_status",
    "emergency_address_sid",
    "emergency_address_status",
    "bundle_sid",
    "status",
    "type",
}
INBOUND_FIELDS = {
    "ToCountry",
    "SmsMessageSid",
    "NumMedia",
    "SmsSid",
    "SmsStatus",
    "Body",
    "To",
    "NumSegments",
    "MessageSid",
    "AccountSid",
    "From",
    "ApiVersion",
}


@dataclass
class FakeBot:
    """Records Twilio's webhooks; `answer` makes the reply (default: empty TwiML)."""

    hooks: list[tuple[str, dict[str, str], str]] = field(default_factory=list)  # url, form, signature
    answer: Callable[[web.Request], Awaitable[web.Response]] | None = None
    base: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        """Record the request and answer it."""
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.hooks.append((str(request.url), form, request.headers.get("X-Twilio-Signature", "")))
        if self.answer is not None:
            return await self.answer(request)
        return web.Response(text="<Response/>", content_type="text/xml")


@dataclass
class Env:
    sim: TwilioSimulator
    token: str
    bot: FakeBot
    http: aiohttp.ClientSession  # Basic auth as the sandbox account


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = FakeBot()
    async with serve({"/twilio/inbound": fake.handle, "/service/inbound": fake.handle}) as base:
        fake.base = base
        sim = TwilioSimulator(SimClock(START))
        token = sim.add_sandbox_account()
        sim.add_account(OTHER, OTHER_TOKEN, numbers=["+15550009999"])
        await sim.start()
        sim.set_sms_url(DEFAULT_FROM, f"{fake.base}/twilio/inbound")
        headers = {"Authorization": aiohttp.encode_basic_auth(SANDBOX_ACCOUNT_SID, token)}
        async with aiohttp.ClientSession(sim.url, headers=headers) as http:
            yield Env(sim, token, fake, http)
        await sim.stop()


async def call(http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.request(method, path, **kwargs) as resp:
        return resp.status, await resp.json()


def signed_ok(env: Env, hook: tuple[str, dict[str, str], str], token: str | None = None) -> bool:
    url, form, signature = hook
    return bool(RequestValidator(token or env.token).validate(url, form, signature))


# ----- IncomingPhoneNumbers ------------------------------------------------------------------------


async def test_numbers_list_in_the_spec_shape(env: Env) -> None:
    """The account's numbers, each with exactly the spec's fields, and a PhoneNumber filter with wildcards."""
    status, page = await call(env.http, "GET", NUMBERS)
    assert status == 200
    assert {n["phone_number"] for n in page["incoming_phone_numbers"]} == {
        "+15005550006",
        DEFAULT_FROM,
        SERVICE_NUMBER,
    }
    for number in page["incoming_phone_numbers"]:
        assert set(number) == NUMBER_FIELDS
        assert number["sid"].startswith("PN") and len(number["sid"]) == 34
    assert page["next_page_uri"] is None and page["page_size"] == 50
    for wanted, found in ((DEFAULT_FROM, [DEFAULT_FROM]), ("765*321", [DEFAULT_FROM]), ("+1999", [])):
        status, page = await call(env.http, "GET", NUMBERS, params={"PhoneNumber": wanted})
        assert [n["phone_number"] for n in page["incoming_phone_numbers"]] == found


async def test_update_sms_url_and_method(env: Env) -> None:
    """POST SmsUrl/SmsMethod changes where the number's texts go; a bad URL is a 400 in Twilio's shape."""
    number = env.sim.phone_number(DEFAULT_FROM)
    path = f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/IncomingPhoneNumbers/{number['sid']}.json"
    status, updated = await call(
        env.http, "POST", path, data={"SmsUrl": "https://bot.example/in", "SmsMethod": "get"}
    )
    assert status == 200 and (updated["sms_url"], updated["sms_method"]) == ("https://bot.example/in", "GET")
    status, fetched = await call(env.http, "GET", path)
    assert fetched == updated
    status, error = await call(env.http, "POST", path, data={"SmsUrl": "ftp://nope"})
    assert status == 400 and error["code"] == 20001 and "SmsUrl" in error["message"]
    other_headers = {"Authorization": aiohttp.encode_basic_auth(OTHER, OTHER_TOKEN)}
    other_path = path.replace(SANDBOX_ACCOUNT_SID, OTHER)
    async with aiohttp.ClientSession(env.sim.url, headers=other_headers) as other:
        status, error = await call(other, "GET", other_path)
    assert status == 404 and error["code"] == 20404


async def test_service_number_shows_its_service_and_texts_go_there(env: Env) -> None:
    """Service number: sms_application_sid is its MG, the Messaging API lists it, its sms_url is ignored."""
    number = env.sim.phone_number(SERVICE_NUMBER)
    assert number["sms_application_sid"] == DEFAULT_SERVICE_SID
    assert env.sim.phone_number(DEFAULT_FROM)["sms_application_sid"] is None
    status, members = await call(env.http, "GET", f"/v1/Services/{DEFAULT_SERVICE_SID}/PhoneNumbers")
    assert status == 200 and [m["phone_number"] for m in members["phone_numbers"]] == [SERVICE_NUMBER]
    env.sim.set_sms_url(SERVICE_NUMBER, f"{env.bot.base}/twilio/inbound")
    text = await env.sim.receive_text(PHONE, SERVICE_NUMBER, "to the service")
    assert text.webhook.url is None and text.webhook.note and env.bot.hooks == []
    status, service = await call(
        env.http,
        "POST",
        f"/v1/Services/{DEFAULT_SERVICE_SID}",
        data={"InboundRequestUrl": f"{env.bot.base}/service/inbound"},
    )
    assert status == 200 and service["inbound_request_url"].endswith("/service/inbound")
    await env.sim.receive_text(PHONE, SERVICE_NUMBER, "again")
    assert env.bot.hooks[-1][0].endswith("/service/inbound")
    assert env.bot.hooks[-1][1]["MessagingServiceSid"] == DEFAULT_SERVICE_SID
    env.sim.set_service_inbound(DEFAULT_SERVICE_SID, None, use_number_webhook=True)
    await env.sim.receive_text(PHONE, SERVICE_NUMBER, "to the number")
    assert env.bot.hooks[-1][0].endswith("/twilio/inbound")


# ----- inbound texts -------------------------------------------------------------------------------


async def test_text_from_a_phone_reaches_the_sms_url_signed(env: Env) -> None:
    """The bot gets Twilio's form, signed with the account token; the message is stored as inbound."""
    text = await env.sim.receive_text(PHONE, DEFAULT_FROM, "Hello there")
    (hook,) = env.bot.hooks
    url, form, _ = hook
    assert url == f"{env.bot.base}/twilio/inbound"
    assert set(form) == INBOUND_FIELDS
    assert (form["From"], form["To"], form["Body"], form["NumMedia"]) == (
        PHONE,
        DEFAULT_FROM,
        "Hello there",
        "0",
    )
    assert form["MessageSid"] == form["SmsMessageSid"] == text.message_sid and text.message_sid.startswith(
        "SM"
    )
    assert signed_ok(env, hook) and not signed_ok(env, hook, "wrong")
    assert text.webhook.status == 200 and "<Response/>" in text.webhook.attempts[0].answer
    status, message = await call(
        env.http, "GET", f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages/{text.message_sid}.json"
    )
    assert status == 200
    assert (message["direction"], message["status"], message["from"], message["to"]) == (
        "inbound",
        "received",
        PHONE,
        DEFAULT_FROM,
    )


async def test_whatsapp_text_carries_profile_name(env: Env) -> None:
    """A WhatsApp text goes to the same number's SmsUrl with ProfileName and WaId."""
    await env.sim.receive_text(f"whatsapp:{PHONE}", f"whatsapp:{DEFAULT_FROM}", "hola", profile_name="Ana")
    _, form, _ = env.bot.hooks[-1]
    assert (form["From"], form["To"], form["ProfileName"], form["WaId"]) == (
        f"whatsapp:{PHONE}",
        f"whatsapp:{DEFAULT_FROM}",
        "Ana",
        PHONE[1:],
    )


async def test_a_late_answer_is_retried_once_then_given_up(env: Env) -> None:
    """No answer within the read timeout: Twilio tries once more, then gives up; each try is recorded."""
    env.sim.inbound_policy = WebhookPolicy(read_timeout=0.2, retry_on=frozenset({"ct", "rt"}))
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="<Response/>")

    env.bot.answer = hang
    try:
        async with asyncio.timeout(10):
            text = await env.sim.receive_text(PHONE, DEFAULT_FROM, "anyone?")
    finally:
        release.set()
    assert [(a.status, a.failure, a.retry) for a in text.webhook.attempts] == [
        (None, "rt", 0),
        (None, "rt", 1),
    ]
    assert len(env.bot.hooks) == 2 and env.bot.hooks[0][1] == env.bot.hooks[1][1]


async def test_a_refused_connection_is_retried(env: Env) -> None:
    """The bot down: two connection failures recorded, and the text kept all the same."""
    env.sim.set_sms_url(DEFAULT_FROM, f"http://127.0.0.1:{unused_port()}/twilio/inbound")
    text = await env.sim.receive_text(PHONE, DEFAULT_FROM, "hello?")
    assert [a.failure for a in text.webhook.attempts] == ["ct", "ct"]
    assert text.message_sid in env.sim.messages


async def test_redeliver_sends_the_same_text_again(env: Env) -> None:
    """redeliver posts the same MessageSid and form a second time, newly signed."""
    text = await env.sim.receive_text(PHONE, DEFAULT_FROM, "once")
    again = await env.sim.redeliver(text.message_sid)
    assert again.status == 200 and len(env.bot.hooks) == 2
    assert env.bot.hooks[0][1] == env.bot.hooks[1][1] and signed_ok(env, env.bot.hooks[1])
    assert [w.message_sid for w in env.sim.inbound_webhooks] == [text.message_sid] * 2


async def test_stop_opts_out_until_start(env: Env) -> None:
    """STOP: OptOutType, Twilio's auto-reply, and 21610 for sends to them until START."""
    text = await env.sim.receive_text(PHONE, DEFAULT_FROM, " stop ")
    assert env.bot.hooks[-1][1]["OptOutType"] == "STOP" and text.opt_out_type == "STOP"
    assert (DEFAULT_FROM, PHONE) in env.sim.opted_out
    reply = env.sim.message_json(text.auto_reply_sid or "")
    assert (reply["direction"], reply["from"], reply["to"], reply["body"]) == (
        "outbound-reply",
        DEFAULT_FROM,
        PHONE,
        AUTO_REPLIES["STOP"],
    )
    messages = f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages.json"
    status, error = await call(
        env.http, "POST", messages, data={"To": PHONE, "From": DEFAULT_FROM, "Body": "hi"}
    )
    assert status == 400 and error["code"] == 21610
    await env.sim.receive_text(PHONE, DEFAULT_FROM, "START")
    assert env.bot.hooks[-1][1]["OptOutType"] == "START" and env.sim.opted_out == set()
    status, _ = await call(env.http, "POST", messages, data={"To": PHONE, "From": DEFAULT_FROM, "Body": "hi"})
    assert status == 201


async def test_twiml_message_answer_goes_back_to_the_phone(env: Env) -> None:
    """A <Message> in the bot's TwiML answer is sent back, as Twilio would."""

    async def reply(request: web.Request) -> web.Response:
        return web.Response(text="<Response><Message>Got it</Message></Response>", content_type="text/xml")

    env.bot.answer = reply
    text = await env.sim.receive_text(PHONE, DEFAULT_FROM, "hi")
    assert [env.sim.message_json(s)["body"] for s in text.reply_sids] == ["Got it"]


async def test_phone_view_lists_what_the_phone_received(env: Env) -> None:
    """phone_messages: our replies to a number, with status; arrived only once delivered."""
    messages = f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages.json"
    await env.sim.receive_text(PHONE, DEFAULT_FROM, "hi")
    await call(env.http, "POST", messages, data={"To": PHONE, "From": DEFAULT_FROM, "Body": "reply"})
    await call(env.http, "POST", messages, data={"To": "+15550004321", "From": DEFAULT_FROM, "Body": "other"})
    (received,) = env.sim.phone_messages(PHONE)
    assert (received["body"], received["status"], received["arrived"]) == ("reply", "queued", False)
    env.sim.clock.advance(timedelta(seconds=5))
    assert env.sim.phone_messages(PHONE)[0]["arrived"] is True
    both = env.sim.phone_messages(PHONE, include_sent=True)
    assert [(m["direction"], m["body"]) for m in both] == [("sent", "hi"), ("received", "reply")]
    async with aiohttp.ClientSession(env.sim.url) as anon:
        async with anon.get("/_sim/phone", params={"number": PHONE, "sent": "1"}) as resp:
            assert [m["body"] for m in await resp.json()] == ["hi", "reply"]
        async with anon.get("/_sim/phone", params={"number": "nobody"}) as resp:
            assert resp.status == 400


# ----- media -------------------------------------------------------------------------------------


async def test_media_needs_basic_auth_then_redirects_to_a_cdn_without_it(env: Env) -> None:
    """401 without auth, 307 with it to another origin, which serves the bytes only without credentials."""
    picture = b"\x89PNG fake bytes"
    text = await env.sim.receive_text(PHONE, DEFAULT_FROM, "", media=[InboundMedia("image/png", picture)])
    _, form, _ = env.bot.hooks[-1]
    assert text.message_sid.startswith("MM") and form["NumMedia"] == "1"
    assert form["MediaContentType0"] == "image/png"
    media_url = form["MediaUrl0"]
    assert media_url.startswith(
        f"{env.sim.url}/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages/{text.message_sid}/Media/ME"
    )
    async with aiohttp.ClientSession() as anon:
        async with anon.get(media_url, allow_redirects=False) as resp:
            assert resp.status == 401
        async with env.http.get(media_url, allow_redirects=False) as resp:
            assert resp.status == 307
            location = resp.headers["Location"]
        assert location.startswith(env.sim.cdn_url) and not location.startswith(env.sim.url)
        async with anon.get(location, headers=dict(env.http.headers)) as resp:
            assert resp.status == 400 and "Only one auth mechanism" in await resp.text()
        async with anon.get(location) as resp:
            assert resp.status == 200 and resp.content_type == "image/png" and await resp.read() == picture
    assert [(f.where, f.status, f.authorization) for f in env.sim.media_fetches] == [
        ("api", 401, False),
        ("api", 307, True),
        ("cdn", 400, True),
        ("cdn", 200, False),
    ]
    status, listing = await call(
        env.http, "GET", media_url.removeprefix(env.sim.url).rsplit("/", 1)[0] + ".json"
    )
    assert status == 200 and [m["content_type"] for m in listing["media_list"]] == ["image/png"]


async def test_hanging_media_never_answers(env: Env) -> None:
    """A medium made with hang=True keeps the client waiting until it gives up."""
    await env.sim.receive_text(
        PHONE, DEFAULT_FROM, "pic", media=[InboundMedia("image/jpeg", b"x", hang=True)]
    )
    media_url = env.bot.hooks[-1][1]["MediaUrl0"]
    async with env.http.get(media_url, allow_redirects=False) as resp:
        location = resp.headers["Location"]
    async with aiohttp.ClientSession() as anon:
        with pytest.raises(TimeoutError):
            async with anon.get(location, timeout=aiohttp.ClientTimeout(total=0.3)):
                pass


# ----- bad input and the control routes --------------------------------------------------------


@pytest.mark.parametrize(
    ("from_", "to", "body", "reason"),
    [
        ("not a number", DEFAULT_FROM, "x", "E.164"),
        (PHONE, "+15559998888", "x", "not a number of any account"),
        (f"whatsapp:{PHONE}", DEFAULT_FROM, "x", "whatsapp"),
        (PHONE, DEFAULT_FROM, "", "body or media"),
    ],
)
async def test_bad_texts_are_refused_in_words(env: Env, from_: str, to: str, body: str, reason: str) -> None:
    """Bad senders, numbers that are not ours, mixed channels and empty texts: ValueError that says why."""
    with pytest.raises(ValueError, match=reason):
        await env.sim.receive_text(from_, to, body)
    assert env.bot.hooks == []


async def test_control_inbound_route(env: Env) -> None:
    """POST /_sim/inbound takes JSON (media as base64 or text) and answers with the delivery."""
    data = {
        "from": PHONE,
        "to": DEFAULT_FROM,
        "body": "via route",
        "media": [{"content_type": "text/plain", "data_base64": base64.b64encode(b"note").decode()}],
    }
    async with aiohttp.ClientSession(env.sim.url) as anon:
        async with anon.post("/_sim/inbound", json=data) as resp:
            assert resp.status == 201
            answer = await resp.json()
        async with anon.post("/_sim/inbound", json={"from": PHONE, "to": "+1"}) as resp:
            assert resp.status == 400 and "account" in (await resp.json())["error"]
        async with anon.post(
            "/_sim/inbound", json={**data, "media": [{"content_type": "x/y", "data_base64": "!"}]}
        ) as resp:
            assert resp.status == 400
        async with anon.post(f"/_sim/inbound/{answer['message_sid']}/redeliver") as resp:
            assert resp.status == 200
        async with anon.get("/_sim/webhooks", params={"kind": "inbound"}) as resp:
            webhooks = await resp.json()
        async with anon.post("/_sim/sms-url", json={"number": DEFAULT_FROM, "url": "mailto:x"}) as resp:
            assert resp.status == 400 and "SmsUrl" in (await resp.json())["error"]
    assert answer["webhook"]["status"] == 200 and answer["webhook"]["form"]["Body"] == "via route"
    assert [w["message_sid"] for w in webhooks] == [answer["message_sid"]] * 2

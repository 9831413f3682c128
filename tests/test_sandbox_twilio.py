"""The Twilio simulator, driven over real HTTP the way the bot's client drives it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sandbox_helpers import ACCOUNT, MESSAGES, NUMBER, OTHER, OTHER_TOKEN, SERVICE, START, TO, TOKEN, running

from bot.sandbox.twilio import (
    DEFAULT_FROM,
    DEFAULT_SERVICE_SID,
    MAGIC_FROM,
    SANDBOX_ACCOUNT,
    Fault,
    SimClock,
    TwilioSimulator,
    segment_count,
)

KEY_SID = "SK" + "3" * 32
KEY_SECRET = "key-secret"

# Every property of api.v2010.account.message in Twilio's spec (twilio_messages_mock.json).
MESSAGE_FIELDS = {
    "account_sid",
    "api_version",
    "body",
    "date_created",
    "date_sent",
    "date_updated",
    "direction",
    "error_code",
    "error_message",
    "from",
    "messaging_service_sid",
    "num_media",
    "num_segments",
    "price",
    "price_unit",
    "sid",
    "status",
    "subresource_uris",
    "to",
    "uri",
}
ACCOUNT_FIELDS = {
    "auth_token",
    "date_created",
    "date_updated",
    "friendly_name",
    "owner_account_sid",
    "sid",
    "status",
    "subresource_uris",
    "type",
    "uri",
}
LIST_FIELDS = {
    "messages",
    "end",
    "first_page_uri",
    "next_page_uri",
    "page",
    "page_size",
    "previous_page_uri",
    "start",
    "uri",
}
RFC2822 = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000")


@pytest.fixture
async def sim(clock: SimClock) -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator(clock)
    simulator.add_account(
        ACCOUNT,
        TOKEN,
        friendly_name="Ops",
        api_keys={KEY_SID: KEY_SECRET},
        numbers=[NUMBER, "+15557650000"],
        services=[SERVICE],
    )
    simulator.add_account(OTHER, OTHER_TOKEN, numbers=["+15550001111"])
    async with running(simulator):
        yield simulator


@pytest.fixture
async def http(sim: TwilioSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(sim.url, headers=basic(ACCOUNT, TOKEN)) as session:
        yield session


@pytest.fixture
async def anon(sim: TwilioSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(sim.url) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, path: str, data: Any = None, params: Any = None
) -> tuple[int, Any]:
    async with http.request(method, path, data=data, params=params) as resp:
        body = await resp.json() if resp.status != 204 else None
        return resp.status, body


async def create(http: aiohttp.ClientSession, **form: str) -> tuple[int, Any]:
    return await call(http, "POST", MESSAGES, data=form)


async def create_scheduled(http: aiohttp.ClientSession, ahead: timedelta) -> tuple[int, Any]:
    """Schedule "later" to TO through SERVICE, `ahead` of START; Twilio's (status, body)."""
    return await create(
        http,
        To=TO,
        MessagingServiceSid=SERVICE,
        Body="later",
        ScheduleType="fixed",
        SendAt=send_at(START + ahead),
    )


async def send(http: aiohttp.ClientSession, body: str = "hi", to: str = TO, **form: str) -> dict[str, Any]:
    form.setdefault("From", NUMBER)
    status, message = await create(http, To=to, Body=body, **form)
    assert status == 201, message
    assert isinstance(message, dict)
    return message


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, secret)}


def message_path(sid: str, account: str = ACCOUNT) -> str:
    return f"/2010-04-01/Accounts/{account}/Messages/{sid}.json"


def send_at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def twilio_error(code: int, status: int = 400) -> dict[str, Any]:
    return {"code": code, "status": status, "more_info": f"https://www.twilio.com/docs/errors/{code}"}


def assert_error(body: Any, code: int, status: int = 400) -> None:
    assert set(body) == {"code", "message", "more_info", "status"}
    assert {k: body[k] for k in ("code", "status", "more_info")} == twilio_error(code, status)
    assert isinstance(body["message"], str) and body["message"]


# ----- clock ---------------------------------------------------------------------------------------


def test_fixed_clock_moves_only_when_advanced() -> None:
    """A fixed SimClock stays put until advanced, and refuses to go back."""
    clock = SimClock(START)
    assert clock.now() == START
    assert clock.advance(timedelta(seconds=90)) == START + timedelta(seconds=90)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))


def test_clock_following_real_time_adds_elapsed_and_advanced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real-time-following clock is start + elapsed real time + what was advanced."""
    ticks = iter([100.0, 102.5, 104.0])
    monkeypatch.setattr("bot.sandbox.twilio.clock.time.monotonic", lambda: next(ticks))
    clock = SimClock(START, follow_real_time=True)
    assert clock.now() == START + timedelta(seconds=2.5)
    assert clock.advance(timedelta(minutes=1)) == START + timedelta(seconds=64)


def test_default_clock_is_aware_utc() -> None:
    """SimClock() starts near real UTC now and is timezone-aware."""
    now = SimClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)


# ----- lifecycle and auth --------------------------------------------------------------------------


async def test_start_binds_loopback_port(sim: TwilioSimulator) -> None:
    """start() listens on 127.0.0.1 on a free port and reports it in url and port."""
    assert sim.port > 0
    assert sim.url == f"http://127.0.0.1:{sim.port}"


async def test_account_fetch_with_auth_token(http: aiohttp.ClientSession) -> None:
    """The account resource answers with the spec's fields and never shows the auth token."""
    status, body = await call(http, "GET", f"/2010-04-01/Accounts/{ACCOUNT}.json")
    assert status == 200
    assert set(body) == ACCOUNT_FIELDS
    assert body["sid"] == ACCOUNT
    assert body["friendly_name"] == "Ops"
    assert body["status"] == "active"
    assert body["auth_token"] is None
    assert TOKEN not in str(body)
    assert body["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}.json"
    assert RFC2822.fullmatch(body["date_created"])


async def test_api_key_authenticates_for_its_account(sim: TwilioSimulator) -> None:
    """An API key SID with its secret works on its own account."""
    auth = basic(KEY_SID, KEY_SECRET)
    async with aiohttp.ClientSession(sim.url, headers=auth) as session:
        status, body = await call(session, "GET", f"/2010-04-01/Accounts/{ACCOUNT}.json")
        assert status == 200 and body["sid"] == ACCOUNT
        message = await send(session)
        assert message["account_sid"] == ACCOUNT


@pytest.mark.parametrize(
    ("user", "secret", "account"),
    [
        (ACCOUNT, "wrong", ACCOUNT),
        (KEY_SID, "wrong", ACCOUNT),
        (KEY_SID, TOKEN, ACCOUNT),
        (OTHER, OTHER_TOKEN, ACCOUNT),
        (KEY_SID, KEY_SECRET, OTHER),
        ("AC" + "9" * 32, "whatever", "AC" + "9" * 32),
    ],
)
async def test_bad_credentials_are_401_20003(
    sim: TwilioSimulator, user: str, secret: str, account: str
) -> None:
    """Wrong secrets, unknown users and another account's credentials all get Twilio's 20003."""
    async with aiohttp.ClientSession(sim.url, headers=basic(user, secret)) as session:
        status, body = await call(session, "GET", f"/2010-04-01/Accounts/{account}/Messages.json")
    assert status == 401
    assert body == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


async def test_missing_auth_is_401(anon: aiohttp.ClientSession) -> None:
    """A request without Basic auth is refused with 20003."""
    status, body = await call(anon, "POST", MESSAGES, data={"To": TO, "From": NUMBER, "Body": "x"})
    assert status == 401
    assert_error(body, 20003, 401)


async def test_unknown_path_is_404_20404(http: aiohttp.ClientSession) -> None:
    """Paths Twilio does not have answer 404 with code 20404."""
    status, body = await call(http, "GET", "/2010-04-01/Accounts/Nope/Calls/x.json")
    assert status == 404
    assert_error(body, 20404, 404)


async def test_unsupported_method_is_405(http: aiohttp.ClientSession) -> None:
    """DELETE on the Messages list is not allowed."""
    status, body = await call(http, "DELETE", MESSAGES)
    assert status == 405
    assert_error(body, 20004, 405)


# ----- create --------------------------------------------------------------------------------------


async def test_create_answers_201_with_every_spec_field(http: aiohttp.ClientSession) -> None:
    """A create returns 201 and the message object with all of the spec's fields, typed like Twilio."""
    status, message = await create(http, To=TO, From=NUMBER, Body="Hello! 👍")
    assert status == 201
    assert set(message) == MESSAGE_FIELDS
    sid = message["sid"]
    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)
    assert message["account_sid"] == ACCOUNT
    assert message["api_version"] == "2010-04-01"
    assert message["body"] == "Hello! 👍"
    assert message["status"] == "queued"
    assert message["direction"] == "outbound-api"
    assert message["from"] == NUMBER and message["to"] == TO
    assert message["num_media"] == "0" and message["num_segments"] == "1"
    assert message["price"] is None and message["price_unit"] == "USD"
    assert message["error_code"] is None and message["error_message"] is None
    assert message["date_sent"] is None
    assert message["date_created"] == "Thu, 15 Jan 2026 12:00:00 +0000"
    assert RFC2822.fullmatch(message["date_updated"])
    assert message["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
    assert message["subresource_uris"] == {
        "media": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media.json",
        "feedback": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Feedback.json",
    }


async def test_body_is_stored_verbatim(http: aiohttp.ClientSession, sim: TwilioSimulator) -> None:
    """Bodies with markup, newlines and emoji come back exactly as sent."""
    body = "<!channel> & <@U123>\nline two\t👍 *bold*"
    message = await send(http, body)
    status, fetched = await call(http, "GET", message_path(message["sid"]))
    assert status == 200 and fetched["body"] == body
    assert sim.messages[message["sid"]].body == body


async def test_media_urls_are_repeated_form_keys(http: aiohttp.ClientSession) -> None:
    """Repeated MediaUrl keys count as media, give an MM SID and allow an empty body."""
    form = [
        ("To", TO),
        ("From", NUMBER),
        ("MediaUrl", "https://e.x/a.png"),
        ("MediaUrl", "https://e.x/b.png"),
    ]
    status, message = await call(http, "POST", MESSAGES, data=form)
    assert status == 201
    assert message["num_media"] == "2"
    assert message["sid"].startswith("MM")


def test_segment_count_follows_gsm7_and_ucs2() -> None:
    """Segments are 160/153 GSM-7 characters or 70/67 UCS-2 units."""
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("€" * 80) == 1
    assert segment_count("👍" * 35) == 1
    assert segment_count("👍" * 36) == 2


async def test_long_body_reports_its_segments(http: aiohttp.ClientSession, clock: SimClock) -> None:
    """A 300-character body is 2 segments and is priced per segment once sent."""
    message = await send(http, "a" * 300)
    assert message["num_segments"] == "2"
    clock.advance(timedelta(seconds=1))
    _, fetched = await call(http, "GET", message_path(message["sid"]))
    assert fetched["price"] == "-0.01500"


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": NUMBER, "Body": "x"}, 21604),
        ({"To": "", "From": NUMBER, "Body": "x"}, 21604),
        ({"To": TO, "Body": "x"}, 21603),
        ({"To": "5551230000", "From": NUMBER, "Body": "x"}, 21211),
        ({"To": "+1555abc", "From": NUMBER, "Body": "x"}, 21211),
        ({"To": "whatsapp:12345", "From": "whatsapp:" + NUMBER, "Body": "x"}, 21211),
        ({"To": TO, "From": "+15559999999", "Body": "x"}, 21606),
        ({"To": TO, "From": "not a number", "Body": "x"}, 21212),
        ({"To": TO, "From": NUMBER}, 21602),
        ({"To": TO, "From": NUMBER, "Body": ""}, 21602),
        ({"To": TO, "From": NUMBER, "Body": "x" * 1601}, 21617),
        ({"To": TO, "MessagingServiceSid": "MG" + "f" * 32, "Body": "x"}, 21701),
        ({"To": TO, "MessagingServiceSid": "not-a-sid", "Body": "x"}, 21701),
        ({"To": "whatsapp:" + TO, "From": NUMBER, "Body": "x"}, 21910),
        ({"To": TO, "From": "whatsapp:" + NUMBER, "Body": "x"}, 21910),
    ],
)
async def test_invalid_creates_get_twilio_codes(
    http: aiohttp.ClientSession, sim: TwilioSimulator, form: dict[str, str], code: int
) -> None:
    """Each invalid create gets Twilio's error code and stores nothing."""
    status, body = await create(http, **form)
    assert status == 400
    assert_error(body, code)
    assert sim.messages == {}
    assert sim.creates() == []


async def test_missing_from_message_is_twilios(http: aiohttp.ClientSession) -> None:
    """21603 carries Twilio's own sentence."""
    _, body = await create(http, To=TO, Body="x")
    assert body["message"] == "A 'From' phone number is required."


async def test_body_of_1600_chars_is_accepted(http: aiohttp.ClientSession) -> None:
    """Exactly 1600 characters is within the limit."""
    message = await send(http, "x" * 1600)
    assert len(message["body"]) == 1600


async def test_more_than_ten_media_is_refused(http: aiohttp.ClientSession) -> None:
    """Eleven MediaUrl values get 21623."""
    form = [("To", TO), ("From", NUMBER), *[("MediaUrl", f"https://e.x/{i}.png") for i in range(11)]]
    status, body = await call(http, "POST", MESSAGES, data=form)
    assert status == 400
    assert_error(body, 21623)


async def test_whatsapp_pair_is_accepted(http: aiohttp.ClientSession) -> None:
    """whatsapp: To with a whatsapp: From of an owned number is fine."""
    message = await send(http, to="whatsapp:" + TO, From="whatsapp:" + NUMBER)
    assert message["to"] == "whatsapp:" + TO
    assert message["from"] == "whatsapp:" + NUMBER


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [
        ("+15005550001", NUMBER, 21211),
        ("+15005550002", NUMBER, 21612),
        ("+15005550003", NUMBER, 21408),
        ("+15005550004", NUMBER, 21610),
        ("+15005550009", NUMBER, 21614),
        (TO, "+15005550001", 21212),
        (TO, "+15005550007", 21606),
        (TO, "+15005550008", 21611),
    ],
)
async def test_magic_numbers(
    http: aiohttp.ClientSession, sim: TwilioSimulator, to: str, from_: str, code: int
) -> None:
    """Twilio's magic To and From numbers fail with their documented codes and store nothing."""
    status, body = await create(http, To=to, From=from_, Body="x")
    assert status == 400
    assert_error(body, code)
    assert sim.messages == {}


async def test_magic_sender_works_for_any_account(sim: TwilioSimulator) -> None:
    """+15005550006 is a valid sender even for an account that does not own it."""
    async with aiohttp.ClientSession(sim.url, headers=basic(OTHER, OTHER_TOKEN)) as session:
        status, message = await call(
            session,
            "POST",
            f"/2010-04-01/Accounts/{OTHER}/Messages.json",
            data={"To": TO, "From": MAGIC_FROM, "Body": "x"},
        )
    assert status == 201
    assert message["from"] == MAGIC_FROM


# ----- status over time ----------------------------------------------------------------------------


async def test_status_moves_queued_sent_delivered(http: aiohttp.ClientSession, clock: SimClock) -> None:
    """A message from a number is queued, sent after 1 s (date_sent, price) and delivered after 3 s."""
    message = await send(http)
    path = message_path(message["sid"])
    assert message["status"] == "queued"
    clock.advance(timedelta(milliseconds=999))
    assert (await call(http, "GET", path))[1]["status"] == "queued"
    clock.advance(timedelta(milliseconds=1))
    _, sent = await call(http, "GET", path)
    assert sent["status"] == "sent"
    assert sent["date_sent"] == "Thu, 15 Jan 2026 12:00:01 +0000"
    assert sent["price"] == "-0.00750"
    clock.advance(timedelta(seconds=2))
    _, delivered = await call(http, "GET", path)
    assert delivered["status"] == "delivered"
    assert delivered["date_updated"] == "Thu, 15 Jan 2026 12:00:03 +0000"
    assert delivered["date_sent"] == sent["date_sent"]


async def test_service_message_is_accepted_then_gets_a_sender(
    http: aiohttp.ClientSession, clock: SimClock
) -> None:
    """Via a Messaging Service: accepted with no from and 0 segments, then queued from the pool."""
    status, message = await create(http, To=TO, MessagingServiceSid=SERVICE, Body="hi")
    assert status == 201
    assert message["status"] == "accepted"
    assert message["from"] is None and message["num_segments"] == "0"
    assert message["messaging_service_sid"] == SERVICE
    path = message_path(message["sid"])
    clock.advance(timedelta(milliseconds=500))
    _, queued = await call(http, "GET", path)
    assert queued["status"] == "queued" and queued["from"] == NUMBER and queued["num_segments"] == "1"
    clock.advance(timedelta(seconds=3))
    assert (await call(http, "GET", path))[1]["status"] == "delivered"


async def test_number_ending_0666_is_undelivered(http: aiohttp.ClientSession, clock: SimClock) -> None:
    """A To ending in 0666 ends undelivered with error 30003."""
    message = await send(http, to="+15551230666")
    clock.advance(timedelta(seconds=3))
    _, fetched = await call(http, "GET", message_path(message["sid"]))
    assert fetched["status"] == "undelivered"
    assert fetched["error_code"] == 30003 and fetched["error_message"]


# ----- scheduling ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ahead", "ok"),
    [
        (timedelta(seconds=899), False),
        (timedelta(seconds=900), True),
        (timedelta(days=35), True),
        (timedelta(days=35, seconds=1), False),
        (timedelta(seconds=-60), False),
    ],
)
async def test_schedule_window_edges(http: aiohttp.ClientSession, ahead: timedelta, ok: bool) -> None:
    """SendAt must be 900 s to 35 days ahead, both ends inclusive; outside is 35114."""
    status, body = await create_scheduled(http, ahead)
    if ok:
        assert status == 201
        assert body["status"] == "scheduled" and body["date_sent"] is None and body["from"] is None
    else:
        assert status == 400
        assert_error(body, 35114)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"MessagingServiceSid": SERVICE, "ScheduleType": "fixed", "SendAt": "tomorrow"}, 35114),
        ({"MessagingServiceSid": SERVICE, "ScheduleType": "fixed", "SendAt": "2026-01-16T12:00:00"}, 35114),
        ({"MessagingServiceSid": SERVICE, "ScheduleType": "fixed"}, 35111),
        ({"MessagingServiceSid": SERVICE, "ScheduleType": "later", "SendAt": "2026-01-16T12:00:00Z"}, 35126),
        ({"From": NUMBER, "ScheduleType": "fixed", "SendAt": "2026-01-16T12:00:00Z"}, 35118),
    ],
)
async def test_schedule_errors(
    http: aiohttp.ClientSession, sim: TwilioSimulator, form: dict[str, str], code: int
) -> None:
    """Bad SendAt, missing SendAt, bad ScheduleType and no Messaging Service get their codes."""
    status, body = await create(http, To=TO, Body="later", **form)
    assert status == 400
    assert_error(body, code)
    assert sim.messages == {}


async def test_scheduled_message_goes_out_at_send_at(http: aiohttp.ClientSession, clock: SimClock) -> None:
    """A scheduled message stays scheduled until SendAt, then is queued, sent and delivered."""
    when = START + timedelta(hours=1)
    status, message = await create(
        http, To=TO, MessagingServiceSid=SERVICE, Body="x", ScheduleType="fixed", SendAt=send_at(when)
    )
    assert status == 201 and message["num_segments"] == "0"
    path = message_path(message["sid"])
    clock.advance(timedelta(minutes=59, seconds=59))
    assert (await call(http, "GET", path))[1]["status"] == "scheduled"
    clock.advance(timedelta(seconds=1))
    _, queued = await call(http, "GET", path)
    assert queued["status"] == "queued" and queued["from"] == NUMBER
    clock.advance(timedelta(seconds=1))
    _, sent = await call(http, "GET", path)
    assert sent["status"] == "sent" and sent["date_sent"] == "Thu, 15 Jan 2026 13:00:01 +0000"
    clock.advance(timedelta(seconds=2))
    assert (await call(http, "GET", path))[1]["status"] == "delivered"


async def test_send_at_without_schedule_type_sends_now(http: aiohttp.ClientSession) -> None:
    """Like Twilio, SendAt without ScheduleType does not schedule: the message goes at once."""
    status, message = await create(
        http, To=TO, MessagingServiceSid=SERVICE, Body="x", SendAt=send_at(START + timedelta(hours=1))
    )
    assert status == 201 and message["status"] == "accepted"


# ----- cancel, redact, delete ----------------------------------------------------------------------


async def schedule(http: aiohttp.ClientSession, ahead: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    status, message = await create_scheduled(http, ahead)
    assert status == 201
    assert isinstance(message, dict)
    return message


async def test_cancel_scheduled_message(http: aiohttp.ClientSession, clock: SimClock) -> None:
    """Status=canceled on a scheduled message cancels it for good."""
    message = await schedule(http)
    path = message_path(message["sid"])
    status, canceled = await call(http, "POST", path, data={"Status": "canceled"})
    assert status == 200
    assert canceled["status"] == "canceled"
    clock.advance(timedelta(hours=2))
    _, later = await call(http, "GET", path)
    assert later["status"] == "canceled" and later["date_sent"] is None


async def test_cancel_after_send_at_is_30409(http: aiohttp.ClientSession, clock: SimClock) -> None:
    """Once a scheduled message is past SendAt it can no longer be canceled."""
    message = await schedule(http)
    clock.advance(timedelta(hours=1, seconds=1))
    status, body = await call(http, "POST", message_path(message["sid"]), data={"Status": "canceled"})
    assert status == 400
    assert_error(body, 30409)


async def test_cancel_sent_message_is_30409(http: aiohttp.ClientSession, clock: SimClock) -> None:
    """An ordinary message that was sent cannot be canceled."""
    message = await send(http)
    clock.advance(timedelta(seconds=1))
    status, body = await call(http, "POST", message_path(message["sid"]), data={"Status": "canceled"})
    assert status == 400
    assert_error(body, 30409)


async def test_cancel_twice_is_30409(http: aiohttp.ClientSession) -> None:
    """A canceled message is no longer scheduled, so a second cancel fails."""
    message = await schedule(http)
    path = message_path(message["sid"])
    assert (await call(http, "POST", path, data={"Status": "canceled"}))[0] == 200
    status, body = await call(http, "POST", path, data={"Status": "canceled"})
    assert status == 400
    assert_error(body, 30409)


async def test_other_status_update_is_20001(http: aiohttp.ClientSession) -> None:
    """Status can only be set to canceled."""
    message = await schedule(http)
    status, body = await call(http, "POST", message_path(message["sid"]), data={"Status": "sent"})
    assert status == 400
    assert_error(body, 20001)


async def test_empty_body_update_redacts(http: aiohttp.ClientSession, clock: SimClock) -> None:
    """POST Body= (empty) redacts the text; a non-empty Body is refused."""
    message = await send(http, "secret stuff")
    path = message_path(message["sid"])
    clock.advance(timedelta(seconds=5))
    status, body = await call(http, "POST", path, data={"Body": "new text"})
    assert status == 400
    assert_error(body, 20001)
    status, redacted = await call(http, "POST", path, data={"Body": ""})
    assert status == 200 and redacted["body"] == ""
    assert redacted["date_updated"] == "Thu, 15 Jan 2026 12:00:05 +0000"


@pytest.mark.parametrize("advance", [timedelta(0), timedelta(milliseconds=500)])
async def test_delete_while_processing_is_20009(
    http: aiohttp.ClientSession, clock: SimClock, advance: timedelta
) -> None:
    """Deleting a queued message fails with 20009 and keeps it."""
    message = await send(http)
    clock.advance(advance)
    path = message_path(message["sid"])
    status, body = await call(http, "DELETE", path)
    assert status == 400
    assert_error(body, 20009)
    assert (await call(http, "GET", path))[0] == 200


async def test_delete_scheduled_is_20009(http: aiohttp.ClientSession) -> None:
    """A scheduled message cannot be deleted; cancel it first."""
    message = await schedule(http)
    path = message_path(message["sid"])
    status, body = await call(http, "DELETE", path)
    assert status == 400
    assert_error(body, 20009)
    await call(http, "POST", path, data={"Status": "canceled"})
    assert (await call(http, "DELETE", path))[0] == 204


async def test_delete_complete_message_then_404(
    http: aiohttp.ClientSession, clock: SimClock, sim: TwilioSimulator
) -> None:
    """A delivered message deletes with 204, then fetch, cancel and delete all get 404/20404."""
    message = await send(http)
    clock.advance(timedelta(seconds=3))
    path = message_path(message["sid"])
    assert await call(http, "DELETE", path) == (204, None)
    assert message["sid"] not in sim.messages
    for method in ("GET", "POST", "DELETE"):
        status, body = await call(
            http, method, path, data={"Status": "canceled"} if method == "POST" else None
        )
        assert status == 404
        assert_error(body, 20404, 404)
    _, listed = await call(http, "GET", MESSAGES)
    assert listed["messages"] == []


async def test_unknown_and_foreign_sids_are_404(http: aiohttp.ClientSession, sim: TwilioSimulator) -> None:
    """An unknown SID, or another account's message, is 20404."""
    status, body = await call(http, "GET", message_path("SM" + "0" * 32))
    assert status == 404
    assert_error(body, 20404, 404)
    async with aiohttp.ClientSession(sim.url, headers=basic(OTHER, OTHER_TOKEN)) as other:
        status, theirs = await call(
            other,
            "POST",
            f"/2010-04-01/Accounts/{OTHER}/Messages.json",
            data={"To": TO, "From": "+15550001111", "Body": "x"},
        )
        assert status == 201
    status, body = await call(http, "GET", message_path(theirs["sid"]))
    assert status == 404


# ----- list ----------------------------------------------------------------------------------------


async def list_page(http: aiohttp.ClientSession, uri: str = MESSAGES, **params: str) -> dict[str, Any]:
    status, body = await call(http, "GET", uri, params=params or None)
    assert status == 200, body
    assert set(body) == LIST_FIELDS
    assert isinstance(body, dict)
    return body


async def test_list_is_newest_first_with_envelope(http: aiohttp.ClientSession) -> None:
    """The list has Twilio's envelope and puts the newest message first."""
    first = await send(http, "one")
    second = await send(http, "two")
    page = await list_page(http)
    assert [m["sid"] for m in page["messages"]] == [second["sid"], first["sid"]]
    assert all(set(m) == MESSAGE_FIELDS for m in page["messages"])
    assert page["page"] == 0 and page["page_size"] == 50 and page["start"] == 0 and page["end"] == 1
    assert page["next_page_uri"] is None and page["previous_page_uri"] is None
    assert page["first_page_uri"] == f"{MESSAGES}?PageSize=50&Page=0"
    assert page["uri"] == page["first_page_uri"]


async def test_list_filters_by_to_and_from(http: aiohttp.ClientSession) -> None:
    """To and From filter exactly, and the filters are kept in the page URIs."""
    a = await send(http, to="+15551110000")
    b = await send(http, to="+15552220000", From="+15557650000")
    await send(http, to="+15552220000")
    by_to = await list_page(http, To="+15551110000")
    assert [m["sid"] for m in by_to["messages"]] == [a["sid"]]
    assert "To=%2B15551110000" in by_to["uri"]
    by_from = await list_page(http, From="+15557650000")
    assert [m["sid"] for m in by_from["messages"]] == [b["sid"]]
    both = await list_page(http, To="+15552220000", From=NUMBER)
    assert len(both["messages"]) == 1 and both["messages"][0]["from"] == NUMBER


async def test_list_filters_by_date_sent(http: aiohttp.ClientSession, clock: SimClock) -> None:
    """DateSent matches the UTC day sent; DateSent< and DateSent> are inclusive bounds."""
    day1 = await send(http, "day 1")
    clock.advance(timedelta(days=1))
    day2 = await send(http, "day 2")
    clock.advance(timedelta(seconds=2))
    unsent = await send(http, "not sent yet")
    scheduled = await schedule(http, ahead=timedelta(days=2))

    async def sids(**params: str) -> list[str]:
        return [m["sid"] for m in (await list_page(http, **params))["messages"]]

    assert await sids(DateSent="2026-01-15") == [day1["sid"]]
    assert await sids(DateSent="2026-01-16") == [day2["sid"]]
    assert await sids(**{"DateSent<": "2026-01-15"}) == [day1["sid"]]
    assert await sids(**{"DateSent>": "2026-01-15"}) == [day2["sid"], day1["sid"]]
    assert await sids(**{"DateSent>": "2026-01-17"}) == []
    everything = await sids()
    assert scheduled["sid"] in everything and unsent["sid"] in everything
    status, body = await call(http, "GET", MESSAGES, params={"DateSent": "15/01/2026"})
    assert status == 400
    assert_error(body, 20001)


async def test_list_by_to_includes_scheduled(http: aiohttp.ClientSession) -> None:
    """A scheduled message is listed with no filter and with a To filter, but not by From."""
    scheduled = await schedule(http)
    assert [m["sid"] for m in (await list_page(http))["messages"]] == [scheduled["sid"]]
    assert [m["sid"] for m in (await list_page(http, To=TO))["messages"]] == [scheduled["sid"]]
    assert (await list_page(http, From=NUMBER))["messages"] == []


async def test_walk_next_page_uri_over_120_messages(http: aiohttp.ClientSession) -> None:
    """120 messages at PageSize 50 are 3 pages of 50, 50, 20, no duplicates, null at the end."""
    created = [(await send(http, f"m{i}"))["sid"] for i in range(120)]
    seen: list[str] = []
    sizes: list[int] = []
    uri: str | None = MESSAGES + "?PageSize=50"
    pages = 0
    while uri is not None:
        page = await list_page(http, uri)
        assert page["page"] == pages
        assert page["start"] == pages * 50
        sizes.append(len(page["messages"]))
        seen += [m["sid"] for m in page["messages"]]
        uri = page["next_page_uri"]
        pages += 1
    assert sizes == [50, 50, 20]
    assert seen == list(reversed(created))
    assert len(set(seen)) == 120


async def test_next_page_keeps_filters_and_is_stable(http: aiohttp.ClientSession) -> None:
    """next_page_uri keeps the filters, and new messages do not shift the pages being walked."""
    mine = [(await send(http, f"m{i}", to="+15553330000"))["sid"] for i in range(5)]
    await send(http, "noise", to="+15554440000")
    first = await list_page(http, To="+15553330000", PageSize="2")
    assert first["next_page_uri"] is not None and "To=%2B15553330000" in first["next_page_uri"]
    await send(http, "newer", to="+15553330000")
    second = await list_page(http, first["next_page_uri"])
    third = await list_page(http, second["next_page_uri"])
    assert third["next_page_uri"] is None
    walked = [m["sid"] for p in (first, second, third) for m in p["messages"]]
    assert walked == list(reversed(mine))
    assert second["previous_page_uri"] is not None


@pytest.mark.parametrize(
    "params", [{"PageSize": "0"}, {"PageSize": "1001"}, {"PageSize": "ten"}, {"Page": "-1"}]
)
async def test_bad_paging_is_400(http: aiohttp.ClientSession, params: dict[str, str]) -> None:
    """PageSize outside 1-1000 and a negative Page are refused with 20001."""
    status, body = await call(http, "GET", MESSAGES, params=params)
    assert status == 400
    assert_error(body, 20001)


async def test_page_size_1000_is_allowed(http: aiohttp.ClientSession) -> None:
    """PageSize 1000 is the maximum and is accepted."""
    page = await list_page(http, PageSize="1000")
    assert page["page_size"] == 1000


# ----- faults --------------------------------------------------------------------------------------


async def test_latency_fault_delays_then_answers(http: aiohttp.ClientSession, sim: TwilioSimulator) -> None:
    """A latency fault still answers normally and is recorded."""
    sim.inject(Fault("latency", seconds=0.01))
    message = await send(http)
    assert message["status"] == "queued"
    assert sim.requests[-1].fault == "latency"


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20503)])
async def test_status_fault_answers_without_applying(
    http: aiohttp.ClientSession, sim: TwilioSimulator, status: int, code: int
) -> None:
    """A status fault answers Twilio-shaped with Retry-After and stores nothing."""
    sim.inject(Fault("status", method="POST", path_contains="/Messages.json", status=status, retry_after=2))
    async with http.post(MESSAGES, data={"To": TO, "From": NUMBER, "Body": "x"}) as resp:
        assert resp.status == status
        assert resp.headers["Retry-After"] == "2"
        assert_error(await resp.json(), code, status)
    assert sim.messages == {} and sim.creates() == []
    assert await send(http)  # used up: the next one goes through


async def test_status_fault_without_retry_after_has_no_header(
    http: aiohttp.ClientSession, sim: TwilioSimulator
) -> None:
    """Without retry_after there is no Retry-After header."""
    sim.inject(Fault("status", status=500))
    async with http.get(MESSAGES) as resp:
        assert resp.status == 500
        assert "Retry-After" not in resp.headers


async def test_reset_fault_drops_connection_before_applying(
    http: aiohttp.ClientSession, sim: TwilioSimulator
) -> None:
    """A reset closes the connection with no answer and nothing is stored."""
    sim.inject(Fault("reset", method="POST"))
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await create(http, To=TO, From=NUMBER, Body="x")
    assert sim.messages == {} and sim.creates() == []
    assert sim.requests[-1].fault == "reset" and sim.requests[-1].status is None


async def test_apply_then_reset_stores_but_never_answers(
    http: aiohttp.ClientSession, sim: TwilioSimulator
) -> None:
    """apply_then_reset stores the message, then drops the connection: an unknown outcome."""
    sim.inject(Fault("apply_then_reset", method="POST", path_contains="Messages.json"))
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await create(http, To=TO, From=NUMBER, Body="maybe sent")
    assert [m.body for m in sim.messages.values()] == ["maybe sent"]
    [applied] = sim.creates(ACCOUNT)
    assert applied.fault == "apply_then_reset" and applied.message_sid in sim.messages


async def test_apply_then_hold_answers_only_after_release(
    http: aiohttp.ClientSession, sim: TwilioSimulator
) -> None:
    """apply_then_hold stores at once but keeps the answer pending until release_held()."""
    sim.inject(Fault("apply_then_hold", method="POST"))
    pending = asyncio.create_task(create(http, To=TO, From=NUMBER, Body="held"))
    async with asyncio.timeout(5):
        await sim.wait_held(1)
    assert not pending.done()
    assert sim.held == 1
    assert [m.body for m in sim.messages.values()] == ["held"]
    assert sim.release_held() == 1
    status, message = await pending
    assert status == 201 and message["body"] == "held"
    assert sim.held == 0


async def test_fault_matching_and_times(http: aiohttp.ClientSession, sim: TwilioSimulator) -> None:
    """A fault hits only its method and path, exactly `times` times."""
    sim.inject(Fault("status", method="GET", path_contains="/Messages/", times=2, status=503))
    message = await send(http)  # POST: not matched
    path = message_path(message["sid"])
    assert (await call(http, "GET", path))[0] == 503
    assert (await call(http, "GET", MESSAGES))[0] == 200  # list path: not matched
    assert (await call(http, "GET", path))[0] == 503
    assert sim.faults == []
    assert (await call(http, "GET", path))[0] == 200


async def test_clear_faults(http: aiohttp.ClientSession, sim: TwilioSimulator) -> None:
    """clear_faults() removes pending faults."""
    sim.inject(Fault("status", times=5))
    sim.clear_faults()
    assert (await call(http, "GET", MESSAGES))[0] == 200


def test_fault_rejects_bad_values() -> None:
    """Fault checks its kind, counts and status."""
    with pytest.raises(ValueError):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Fault("status", status=200)
    with pytest.raises(ValueError):
        Fault("latency", times=0)


# ----- records -------------------------------------------------------------------------------------


async def test_requests_are_recorded_without_secrets(
    http: aiohttp.ClientSession, sim: TwilioSimulator
) -> None:
    """Each request is recorded with method, path, query, form and user, never the password."""
    await send(http, "recorded")
    await call(http, "GET", MESSAGES, params={"To": TO})
    create_record, list_record = sim.requests
    assert create_record.method == "POST" and create_record.path == MESSAGES
    assert ("Body", "recorded") in create_record.form and create_record.username == ACCOUNT
    assert create_record.status == 201 and create_record.time == START
    assert create_record.account_sid == ACCOUNT
    assert list_record.query == [("To", TO)]
    assert TOKEN not in repr(sim.requests) and TOKEN not in str([r.to_json() for r in sim.requests])


# ----- control routes ------------------------------------------------------------------------------


async def test_control_fault_routes(anon: aiohttp.ClientSession, http: aiohttp.ClientSession) -> None:
    """Faults can be injected, listed and cleared as JSON under /_sim/faults."""
    async with anon.post("/_sim/faults", json={"kind": "status", "status": 429, "retry_after": 1}) as resp:
        assert resp.status == 201
    async with anon.get("/_sim/faults") as resp:
        faults = await resp.json()
        assert [f["kind"] for f in faults] == ["status"]
    async with anon.post("/_sim/faults", json={"kind": "bogus"}) as resp:
        assert resp.status == 400
    async with anon.post("/_sim/faults", json={"kind": "status", "nope": 1}) as resp:
        assert resp.status == 400
    assert (await call(http, "GET", MESSAGES))[0] == 429
    await anon.post("/_sim/faults", json={"kind": "status"})
    async with anon.delete("/_sim/faults") as resp:
        assert resp.status == 200
    assert (await call(http, "GET", MESSAGES))[0] == 200


async def test_control_advance_requests_and_messages(
    anon: aiohttp.ClientSession, http: aiohttp.ClientSession
) -> None:
    """/_sim/advance moves the clock; /_sim/requests and /_sim/messages show (and clear) what happened."""
    message = await send(http)
    async with anon.post("/_sim/advance", json={"seconds": 3}) as resp:
        assert resp.status == 200
        assert (await resp.json())["now"] == (START + timedelta(seconds=3)).isoformat()
    async with anon.get("/_sim/messages") as resp:
        [shown] = await resp.json()
        assert shown["sid"] == message["sid"] and shown["status"] == "delivered"
    async with anon.get("/_sim/requests") as resp:
        [recorded] = await resp.json()
        assert recorded["method"] == "POST" and recorded["username"] == ACCOUNT
        assert recorded["message_sid"] == message["sid"] and recorded["status"] == 201
    async with anon.delete("/_sim/requests") as resp:
        assert resp.status == 200
    async with anon.get("/_sim/requests") as resp:
        assert await resp.json() == []
    async with anon.post("/_sim/advance", json={"seconds": -1}) as resp:
        assert resp.status == 400
    async with anon.get("/_sim/") as resp:
        state = await resp.json()
        assert state["messages"] == 1 and state["held"] == 0


async def test_control_add_account(anon: aiohttp.ClientSession, sim: TwilioSimulator) -> None:
    """/_sim/accounts adds an account that can then authenticate."""
    sid = "AC" + "7" * 32
    body = {"sid": sid, "auth_token": "t7", "numbers": ["+15557770000"], "services": ["MG" + "7" * 32]}
    async with anon.post("/_sim/accounts", json=body) as resp:
        assert resp.status == 201
    async with anon.post("/_sim/accounts", json={"sid": "bad", "auth_token": "x"}) as resp:
        assert resp.status == 400
    async with aiohttp.ClientSession(sim.url, headers=basic(sid, "t7")) as session:
        status, message = await call(
            session,
            "POST",
            f"/2010-04-01/Accounts/{sid}/Messages.json",
            data={"To": TO, "From": "+15557770000", "Body": "x"},
        )
    assert status == 201 and message["account_sid"] == sid


async def test_control_release(
    anon: aiohttp.ClientSession, http: aiohttp.ClientSession, sim: TwilioSimulator
) -> None:
    """POST /_sim/release lets held requests answer."""
    async with anon.post("/_sim/faults", json={"kind": "apply_then_hold"}) as resp:
        assert resp.status == 201
    pending = asyncio.create_task(create(http, To=TO, From=NUMBER, Body="x"))
    async with asyncio.timeout(5):
        await sim.wait_held(1)
    async with anon.post("/_sim/release") as resp:
        assert (await resp.json()) == {"released": 1}
    assert (await pending)[0] == 201


# ----- sandbox account and standalone --------------------------------------------------------------


async def test_sandbox_account_can_send_from_defaults(clock: SimClock) -> None:
    """The sandbox account sends from DEFAULT_FROM and via DEFAULT_SERVICE_SID."""
    async with TwilioSimulator(clock) as simulator:
        token = simulator.add_sandbox_account()
        auth = basic(SANDBOX_ACCOUNT.sid, token)
        path = f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT.sid}/Messages.json"
        async with aiohttp.ClientSession(simulator.url, headers=auth) as session:
            status, _ = await call(session, "POST", path, data={"To": TO, "From": DEFAULT_FROM, "Body": "x"})
            assert status == 201
            data = {"To": TO, "MessagingServiceSid": DEFAULT_SERVICE_SID, "Body": "x"}
            status, _ = await call(session, "POST", path, data=data)
            assert status == 201


@pytest.mark.slow
async def test_standalone_entrypoint_prints_url_and_serves() -> None:
    """`python -m bot.sandbox.twilio` prints its URL first, serves the sandbox account, stops on SIGTERM."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox.twilio",
        "--auth-token",
        "standalone-token",
        stdout=asyncio.subprocess.PIPE,
        cwd=root,
        env=env,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            url = (await proc.stdout.readline()).decode().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        auth = basic(SANDBOX_ACCOUNT.sid, "standalone-token")
        async with aiohttp.ClientSession(url, headers=auth) as session:
            status, body = await call(session, "GET", f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT.sid}.json")
        assert status == 200 and body["sid"] == SANDBOX_ACCOUNT.sid
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

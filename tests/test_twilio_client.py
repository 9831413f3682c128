"""TwilioClient's seven operations, each run against the simulator and against Prism (Twilio's own spec).

With Prism every answer is one of the spec's examples whatever we send, so those runs prove our requests
pass Twilio's schema (any 4xx fails the test, and so does a request violation Prism reports) and that the
documented answers parse. The simulator runs also check the semantics: what we sent is what we get back.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import aiohttp
import pytest
from conftest import Backend, RecordingSleep, unused_port

from bot.sandbox.twilio import DEFAULT_FROM, DEFAULT_SERVICE_SID, TwilioSimulator
from bot.twilio import AccountInfo, Credentials, Message, MessagePage, TwilioClient, TwilioError

TO = "+15558675310"
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
PRISM_SID = "SM" + "b7c0a2ce80504485a6f653a7110836f5"  # the message SID in the spec's examples


@pytest.fixture(autouse=True)
def no_request_violations(http_violations: list[str]) -> Iterator[None]:
    """Fail any test whose requests Prism found to break Twilio's spec."""
    yield
    assert http_violations == []


@pytest.fixture
def client(
    http_session: aiohttp.ClientSession, twilio_backend: Backend, fake_sleep: RecordingSleep
) -> TwilioClient:
    """A client pointed at the backend under test, with a sleep that never waits."""
    return TwilioClient(http_session, twilio_backend.base_url, timeout=10.0, sleep=fake_sleep)


@pytest.fixture
def sim_client(http_session: aiohttp.ClientSession, twilio_sim: TwilioSimulator) -> TwilioClient:
    """A client pointed at the Twilio simulator, with the default retries and sleep."""
    return TwilioClient(http_session, twilio_sim.url)


def assert_message_shape(message: Message) -> None:
    """Everything a card needs parsed into the right types."""
    assert MESSAGE_SID.fullmatch(message.sid)
    assert message.account_sid.startswith("AC")
    assert isinstance(message.to, str) and isinstance(message.body, str) and message.status
    assert message.num_segments is None or isinstance(message.num_segments, int)
    assert message.num_media is None or isinstance(message.num_media, int)
    assert message.price is None or isinstance(message.price, Decimal)
    for moment in (message.date_created, message.date_sent, message.date_updated):
        assert moment is None or moment.utcoffset() == timedelta(0)
    assert message.date_created is not None


async def delivered(client: TwilioClient, creds: Credentials, sim: TwilioSimulator | None, body: str) -> str:
    """The SID of a delivered message: one sent 5 s ago on the simulator, the spec's example on Prism."""
    if sim is None:
        return PRISM_SID
    sid = (await client.send(creds, to=TO, body=body, from_=DEFAULT_FROM)).sid
    sim.clock.advance(timedelta(seconds=5))
    return sid


def later(sim: TwilioSimulator | None, hours: int = 2) -> datetime:
    """A send time inside Twilio's window, by the simulator's clock when there is one."""
    now = sim.clock.now() if sim is not None else datetime.now(UTC)
    return now + timedelta(hours=hours)


async def test_send_from_a_number(
    client: TwilioClient, twilio_backend: Backend, backend_sim: TwilioSimulator | None
) -> None:
    """send() with From returns the created message, and the simulator stored exactly that."""
    message = await client.send(twilio_backend.creds, to=TO, body="Hello from Slack 👍", from_=DEFAULT_FROM)
    assert_message_shape(message)
    if backend_sim is not None:
        assert (message.to, message.body, message.from_) == (TO, "Hello from Slack 👍", DEFAULT_FROM)
        assert message.status == "queued"
        [create] = backend_sim.creates()
        assert create.form == [("To", TO), ("From", DEFAULT_FROM), ("Body", "Hello from Slack 👍")]


async def test_send_through_a_service_with_media_and_callback(
    client: TwilioClient, twilio_backend: Backend, backend_sim: TwilioSimulator | None
) -> None:
    """send() with a Messaging Service repeats MediaUrl and passes StatusCallback."""
    media = ["https://example.com/a.png", "https://example.com/b.jpg?size=large"]
    message = await client.send(
        twilio_backend.creds,
        to=TO,
        body="Two pictures",
        messaging_service_sid=DEFAULT_SERVICE_SID,
        media_urls=media,
        status_callback="https://bot.example.com/twilio/status",
    )
    assert_message_shape(message)
    if backend_sim is not None:
        assert message.messaging_service_sid == DEFAULT_SERVICE_SID
        assert message.num_media == 2 and message.sid.startswith("MM")
        [create] = backend_sim.creates()
        assert [v for k, v in create.form if k == "MediaUrl"] == media
        assert ("StatusCallback", "https://bot.example.com/twilio/status") in create.form


async def test_schedule_a_message(
    client: TwilioClient, twilio_backend: Backend, backend_sim: TwilioSimulator | None
) -> None:
    """send() with send_at sends ScheduleType=fixed and a UTC SendAt; the simulator holds it as scheduled."""
    send_at = later(backend_sim).replace(microsecond=0)
    message = await client.send(
        twilio_backend.creds,
        to=TO,
        body="Reminder: standup",
        messaging_service_sid=DEFAULT_SERVICE_SID,
        send_at=send_at,
    )
    assert_message_shape(message)
    if backend_sim is not None:
        assert message.status == "scheduled" and message.date_sent is None
        [create] = backend_sim.creates()
        assert ("ScheduleType", "fixed") in create.form
        assert ("SendAt", send_at.strftime("%Y-%m-%dT%H:%M:%SZ")) in create.form


async def test_list_returns_one_page_and_its_next_link_works(
    client: TwilioClient, twilio_backend: Backend, backend_sim: TwilioSimulator | None
) -> None:
    """list_messages() returns one page; following next_page_uri once returns the next page."""
    creds = twilio_backend.creds
    if backend_sim is not None:
        for n in range(3):
            await client.send(creds, to=TO, body=f"message {n}", from_=DEFAULT_FROM)
    first = await client.list_messages(creds, page_size=2)
    assert isinstance(first, MessagePage) and first.messages
    for message in first.messages:
        assert_message_shape(message)
    assert first.next_page_uri is not None
    second = await client.list_messages(creds, page_uri=first.next_page_uri)
    assert isinstance(second, MessagePage)
    if backend_sim is not None:
        assert [m.body for m in first.messages] == ["message 2", "message 1"]
        assert [m.body for m in second.messages] == ["message 0"] and second.next_page_uri is None
        assert len([r for r in backend_sim.requests if r.method == "GET"]) == 2


async def test_list_with_filters(
    client: TwilioClient, twilio_backend: Backend, backend_sim: TwilioSimulator | None
) -> None:
    """To, From and DateSent filters are sent in Twilio's format and narrow the list."""
    creds = twilio_backend.creds
    today = backend_sim.clock.now().date() if backend_sim is not None else date(2019, 5, 24)
    if backend_sim is not None:
        await client.send(creds, to=TO, body="wanted", from_=DEFAULT_FROM)
        await client.send(creds, to="+15558675311", body="other", from_=DEFAULT_FROM)
        backend_sim.clock.advance(timedelta(seconds=5))  # sent, so it has a date_sent
    page = await client.list_messages(creds, to=TO, from_=DEFAULT_FROM, date_sent=today, page_size=1000)
    assert isinstance(page.page_size, int)
    if backend_sim is not None:
        assert [m.body for m in page.messages] == ["wanted"]
        query = dict(backend_sim.requests[-1].query)
        assert query == {"To": TO, "From": DEFAULT_FROM, "DateSent": f"{today}T00:00:00Z", "PageSize": "1000"}


async def test_fetch_a_message(
    client: TwilioClient, twilio_backend: Backend, backend_sim: TwilioSimulator | None
) -> None:
    """fetch() returns the message by SID, with its status moved on by the clock."""
    creds = twilio_backend.creds
    sid = await delivered(client, creds, backend_sim, "fetch me")
    message = await client.fetch(creds, sid)
    assert_message_shape(message)
    if backend_sim is not None:
        assert (message.sid, message.body, message.status) == (sid, "fetch me", "delivered")
        assert message.price is not None and message.price < 0 and message.price_unit == "USD"
        assert message.date_sent is not None


async def test_cancel_a_scheduled_message(
    client: TwilioClient, twilio_backend: Backend, backend_sim: TwilioSimulator | None
) -> None:
    """cancel() sends Status=canceled; a scheduled message comes back canceled."""
    creds = twilio_backend.creds
    sid = PRISM_SID
    if backend_sim is not None:
        scheduled = await client.send(
            creds,
            to=TO,
            body="never mind",
            messaging_service_sid=DEFAULT_SERVICE_SID,
            send_at=later(backend_sim),
        )
        sid = scheduled.sid
    message = await client.cancel(creds, sid)
    assert_message_shape(message)
    if backend_sim is not None:
        assert message.status == "canceled"
        assert backend_sim.requests[-1].form == [("Status", "canceled")]


async def test_delete_a_delivered_message(
    client: TwilioClient, twilio_backend: Backend, backend_sim: TwilioSimulator | None
) -> None:
    """delete() returns None on 204; the simulator no longer knows the message."""
    creds = twilio_backend.creds
    sid = await delivered(client, creds, backend_sim, "delete me")
    assert await client.delete(creds, sid) is None
    if backend_sim is not None:
        with pytest.raises(TwilioError) as caught:
            await client.fetch(creds, sid)
        assert caught.value.code == 20404 and caught.value.status == 404


async def test_verify_account(client: TwilioClient, twilio_backend: Backend) -> None:
    """verify_account() returns the account's SID, name, status and type."""
    info = await client.verify_account(twilio_backend.creds)
    assert isinstance(info, AccountInfo)
    assert info.status == "active" and info.type in ("Trial", "Full") and info.friendly_name
    if twilio_backend.kind == "simulator":
        assert info.sid == twilio_backend.creds.account_sid


# ── simulator-only semantics ─────────────────────────────────────────────────────────────────────────


async def test_api_key_credentials_authenticate_as_the_key(
    sim_client: TwilioClient, twilio_sim: TwilioSimulator, sim_key_creds: Credentials
) -> None:
    """With an API key the Basic auth user is the SK… SID while the path keeps the account SID."""
    info = await sim_client.verify_account(sim_key_creds)
    assert info.sid == sim_key_creds.account_sid
    [request] = twilio_sim.requests
    assert request.username == sim_key_creds.api_key_sid
    assert request.account_sid == sim_key_creds.account_sid


async def test_wrong_secret_is_20003_with_setup_hint(
    sim_client: TwilioClient, twilio_sim: TwilioSimulator, sim_creds: Credentials
) -> None:
    """A wrong auth token gives TwilioError 20003 telling an admin to run setup, and no retry."""
    wrong = Credentials(sim_creds.account_sid, "not-the-token-at-all")
    with pytest.raises(TwilioError) as caught:
        await sim_client.verify_account(wrong)
    err = caught.value
    assert (err.status, err.code, err.retryable) == (401, 20003, False)
    assert "/twilio setup" in str(err) and "not-the-token-at-all" not in str(err) + repr(err)
    assert len(twilio_sim.requests) == 1


async def test_twilio_error_code_comes_back_with_its_hint(
    sim_client: TwilioClient, sim_creds: Credentials
) -> None:
    """An unsubscribed recipient (21610) becomes the plain-words STOP/START hint."""
    with pytest.raises(TwilioError) as caught:
        await sim_client.send(sim_creds, to="+15005550004", body="hi", from_=DEFAULT_FROM)
    assert caught.value.code == 21610 and "START" in str(caught.value)
    assert str(caught.value).endswith("(Twilio error 21610)")


@pytest.mark.parametrize(
    ("operation", "body", "code"),
    [
        ("cancel", "too late", 30409),  # the message already went out
        ("delete", "still queued", 20009),  # the message is not delivered yet
    ],
)
async def test_cancel_after_sending_and_delete_before_delivery_are_refused(
    sim_client: TwilioClient,
    twilio_sim: TwilioSimulator,
    sim_creds: Credentials,
    operation: str,
    body: str,
    code: int,
) -> None:
    """Cancel once sent (30409) and delete while queued (20009) are refused for sure; the message stays."""
    sid = (await sim_client.send(sim_creds, to=TO, body=body, from_=DEFAULT_FROM)).sid
    with pytest.raises(TwilioError) as caught:
        await getattr(sim_client, operation)(sim_creds, sid)
    assert caught.value.code == code and not caught.value.unknown_outcome
    assert sid in twilio_sim.messages


async def test_requests_carry_basic_auth_and_form_encoding(
    http_session: aiohttp.ClientSession, sim_creds: Credentials
) -> None:
    """The Authorization header is Basic account:secret and creates are form-encoded."""
    seen: list[tuple[str | None, str | None]] = []

    async def on_request_start(
        session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        seen.append((params.headers.get("Authorization"), params.headers.get("Content-Type")))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = TwilioClient(session, f"http://127.0.0.1:{unused_port()}", max_attempts=1)
        with pytest.raises(TwilioError):
            await client.send(sim_creds, to=TO, body="x", from_=DEFAULT_FROM)
    token = base64.b64encode(f"{sim_creds.account_sid}:{sim_creds.secret}".encode()).decode()
    assert seen == [(f"Basic {token}", "application/x-www-form-urlencoded")]


# ── arguments are checked before any request ─────────────────────────────────────────────────────────


@pytest.fixture
def offline_client(http_session: aiohttp.ClientSession, fake_sleep: RecordingSleep) -> TwilioClient:
    """A client pointed at a port nobody listens on: a ValueError proves no request was tried."""
    return TwilioClient(http_session, f"http://127.0.0.1:{unused_port()}", max_attempts=1, sleep=fake_sleep)


CREDS = Credentials("AC" + "1" * 32, "secret-token-value")
SID = "SM" + "2" * 32


@pytest.mark.parametrize(
    "sid", ["", "SM123", "SM" + "g" * 32, "XX" + "1" * 32, "../../Accounts/ACx", "SM" + "1" * 32 + "\n"]
)
async def test_malformed_message_sid_is_rejected(offline_client: TwilioClient, sid: str) -> None:
    """A SID that is not SM/MM + 32 hex never becomes part of a path."""
    for call in (offline_client.fetch, offline_client.cancel, offline_client.delete):
        with pytest.raises(ValueError, match="SM or MM"):
            await call(CREDS, sid)


async def test_malformed_account_sid_is_rejected(offline_client: TwilioClient) -> None:
    """An account SID that is not AC + 32 hex is refused before building a URL."""
    with pytest.raises(ValueError, match="account SID"):
        await offline_client.verify_account(Credentials("AC/../../x", "secret-token-value"))
    with pytest.raises(ValueError, match="API key"):
        await offline_client.verify_account(Credentials("AC" + "1" * 32, "s", api_key_sid="SKnope"))


async def test_send_needs_a_sender(offline_client: TwilioClient) -> None:
    """send() without From and without a Messaging Service is a ValueError."""
    with pytest.raises(ValueError, match="sender"):
        await offline_client.send(CREDS, to=TO, body="hi")


async def test_send_rejects_more_than_ten_media_urls(offline_client: TwilioClient) -> None:
    """Twilio takes at most 10 MediaUrl values per message."""
    urls = [f"https://example.com/{n}.png" for n in range(11)]
    with pytest.raises(ValueError, match="10 media"):
        await offline_client.send(CREDS, to=TO, body="hi", from_=DEFAULT_FROM, media_urls=urls)


async def test_send_rejects_a_malformed_service_sid(offline_client: TwilioClient) -> None:
    """A Messaging Service SID must be MG + 32 hex."""
    with pytest.raises(ValueError, match="MG"):
        await offline_client.send(CREDS, to=TO, body="hi", messaging_service_sid="MG123")


async def test_scheduling_needs_a_messaging_service(offline_client: TwilioClient) -> None:
    """Twilio schedules only through a Messaging Service: a send_at with just From is a ValueError."""
    with pytest.raises(ValueError, match="Messaging Service"):
        await offline_client.send(
            CREDS, to=TO, body="hi", from_=DEFAULT_FROM, send_at=datetime(2030, 1, 1, tzinfo=UTC)
        )


async def test_schedule_rejects_a_naive_send_at(offline_client: TwilioClient) -> None:
    """A naive datetime is ambiguous, so send() refuses it as send_at."""
    with pytest.raises(ValueError, match="timezone-aware"):
        await offline_client.send(
            CREDS, to=TO, body="hi", messaging_service_sid=DEFAULT_SERVICE_SID, send_at=datetime(2030, 1, 1)
        )


async def test_schedule_converts_other_zones_to_utc(
    sim_client: TwilioClient, twilio_sim: TwilioSimulator, sim_creds: Credentials
) -> None:
    """An aware send time in another zone is sent as the same instant in UTC with a Z."""
    tokyo = timezone(timedelta(hours=9))
    send_at = (twilio_sim.clock.now() + timedelta(hours=3)).astimezone(tokyo).replace(microsecond=0)
    await sim_client.send(
        sim_creds, to=TO, body="hi", messaging_service_sid=DEFAULT_SERVICE_SID, send_at=send_at
    )
    [create] = twilio_sim.creates()
    assert ("SendAt", send_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")) in create.form


@pytest.mark.parametrize("size", [0, -1, 1001, True])
async def test_list_page_size_must_be_1_to_1000(offline_client: TwilioClient, size: int) -> None:
    """PageSize outside 1–1000 is a ValueError."""
    with pytest.raises(ValueError, match="page_size"):
        await offline_client.list_messages(CREDS, page_size=size)


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example.com/2010-04-01/Accounts/AC" + "1" * 32 + "/Messages.json?Page=1",
        "//evil.example.com/2010-04-01/Accounts/AC" + "1" * 32 + "/Messages.json",
        "/2010-04-01/Accounts/AC" + "3" * 32 + "/Messages.json?Page=1",
        "/2010-04-01/Accounts/AC" + "1" * 32 + "/Messages/SM" + "2" * 32 + ".json",
        "/2010-04-01/Accounts/AC" + "1" * 32 + "/Messages.jsonx",
        "/2010-04-01/Accounts/AC" + "1" * 32 + "/Messages.json?Page=1 HTTP/1.1\r\nX: y",
    ],
)
async def test_page_uri_must_stay_in_this_accounts_messages(offline_client: TwilioClient, uri: str) -> None:
    """A next-page link to another host, account or resource is refused."""
    with pytest.raises(ValueError, match="page_uri"):
        await offline_client.list_messages(CREDS, page_uri=uri)


async def test_page_uri_excludes_filters(offline_client: TwilioClient) -> None:
    """Filters and a page link together are a ValueError: the link carries its own filters."""
    uri = "/2010-04-01/Accounts/AC" + "1" * 32 + "/Messages.json?Page=1"
    with pytest.raises(ValueError, match="not both"):
        await offline_client.list_messages(CREDS, to=TO, page_uri=uri)


def test_base_url_must_be_http_without_credentials(http_session: aiohttp.ClientSession) -> None:
    """A base URL with embedded credentials or another scheme is refused without echoing it."""
    with pytest.raises(ValueError) as caught:
        TwilioClient(http_session, "https://AC1:hunter2secret@api.twilio.com")
    assert "hunter2secret" not in str(caught.value)
    with pytest.raises(ValueError):
        TwilioClient(http_session, "ftp://api.twilio.com")


def test_credentials_repr_hides_the_secret() -> None:
    """repr(Credentials) shows the SIDs but never the secret."""
    creds = Credentials("AC" + "1" * 32, "super-secret-token", api_key_sid="SK" + "2" * 32)
    assert "super-secret-token" not in repr(creds) and "AC111" in repr(creds)
    assert creds.username == "SK" + "2" * 32
    assert Credentials("AC" + "1" * 32, "x").username == "AC" + "1" * 32


def test_missing_prism_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Prism the contract tests skip, except under CI=true where they must fail."""
    import conftest

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        conftest._unavailable("no prism")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        conftest._unavailable("no prism")

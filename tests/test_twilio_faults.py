"""How TwilioClient behaves when Twilio misbehaves: retries where safe, never a second send.

The simulator's faults drive most tests; a tiny scripted server covers answers the simulator never gives
(an HTML 502 from a proxy, a 2xx that is not JSON). Sleeps are recorded, never waited for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web
from conftest import RecordingSleep, unused_port

from bot.sandbox.twilio import DEFAULT_FROM, DEFAULT_SERVICE_SID, Fault, TwilioSimulator
from bot.twilio import Credentials, TwilioClient, TwilioError

TO = "+15558675310"
MESSAGES = "/Messages.json"


@dataclass(frozen=True)
class Rig:
    """A started simulator to fault, its sandbox credentials, and the recording sleep its clients use."""

    session: aiohttp.ClientSession
    sim: TwilioSimulator
    creds: Credentials
    sleeps: RecordingSleep

    def client(self, **options: object) -> TwilioClient:
        """A client for the simulator with the recording sleep and any other options."""
        options.setdefault("sleep", self.sleeps)
        return TwilioClient(self.session, self.sim.url, **options)  # type: ignore[arg-type]


@pytest.fixture
def rig(
    http_session: aiohttp.ClientSession,
    twilio_sim: TwilioSimulator,
    sim_creds: Credentials,
    fake_sleep: RecordingSleep,
) -> Rig:
    """The one fixture most tests here take, in place of the four it is made of."""
    return Rig(http_session, twilio_sim, sim_creds, fake_sleep)


def posts(sim: TwilioSimulator) -> int:
    """How many message creates reached the simulator, applied or not."""
    return sum(1 for r in sim.requests if r.method == "POST" and r.path.endswith(MESSAGES))


async def send(client: TwilioClient, creds: Credentials, body: str = "hello") -> str:
    """Send one message from the sandbox number and return its SID."""
    return (await client.send(creds, to=TO, body=body, from_=DEFAULT_FROM)).sid


# ── 429: not processed, retried for every method ─────────────────────────────────────────────────────


async def test_429_with_retry_after_is_retried_and_sent_once(rig: Rig) -> None:
    """Two 429s with Retry-After: 2 are waited out as asked, then exactly one message is created."""
    rig.sim.inject(Fault("status", method="POST", status=429, retry_after=2, times=2))
    await send(rig.client(), rig.creds)
    assert rig.sleeps.delays == [2.0, 2.0]
    assert posts(rig.sim) == 3 and len(rig.sim.creates()) == 1 and len(rig.sim.messages) == 1


async def test_retry_after_is_capped(rig: Rig) -> None:
    """A Retry-After of ten minutes is cut to the client's cap (30 s by default)."""
    rig.sim.inject(Fault("status", method="GET", status=429, retry_after=600))
    await rig.client().verify_account(rig.creds)
    assert rig.sleeps.delays == [30.0]


async def test_429_without_retry_after_backs_off_with_full_jitter(rig: Rig) -> None:
    """Delays are backoff_base * 2**n, capped at backoff_max, times random()."""
    rig.sim.inject(Fault("status", status=429, times=5))
    client = rig.client(max_attempts=6, backoff_base=1.0, backoff_max=3.0, random=lambda: 0.5)
    await client.verify_account(rig.creds)
    assert rig.sleeps.delays == [0.5, 1.0, 1.5, 1.5, 1.5]


async def test_429_forever_gives_up_after_max_attempts(rig: Rig) -> None:
    """A create that keeps getting 429 stops after max_attempts with a retryable error and no message."""
    rig.sim.inject(Fault("status", status=429, times=100))
    with pytest.raises(TwilioError) as caught:
        await send(rig.client(max_attempts=3), rig.creds)
    err = caught.value
    assert (err.status, err.retryable, err.unknown_outcome) == (429, True, False)
    assert "rate-limiting" in str(err)
    assert posts(rig.sim) == 3 and len(rig.sleeps.delays) == 2 and rig.sim.messages == {}


# ── 5xx: retried for reads and deletes, never for writes ─────────────────────────────────────────────


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_on_get_is_retried(rig: Rig, status: int) -> None:
    """fetch and list succeed after a server error each, one backoff per error."""
    client = rig.client()
    sid = await send(client, rig.creds)
    rig.sim.inject(Fault("status", method="GET", status=status, times=2))
    assert (await client.fetch(rig.creds, sid)).sid == sid
    assert [m.sid for m in (await client.list_messages(rig.creds)).messages] == [sid]
    assert len(rig.sleeps.delays) == 2


async def test_5xx_forever_on_get_gives_up_with_a_retryable_error(rig: Rig) -> None:
    """After max_attempts server errors a read fails with a server-error sentence, marked retryable."""
    rig.sim.inject(Fault("status", method="GET", status=503, times=100))
    with pytest.raises(TwilioError) as caught:
        await rig.client(max_attempts=2).verify_account(rig.creds)
    assert caught.value.retryable and caught.value.status == 503
    assert len(rig.sim.requests) == 2


async def test_500_on_create_is_unknown_outcome_and_not_retried(rig: Rig) -> None:
    """A 500 to a send may hide a sent message: one request only, and the user is told to check."""
    rig.sim.inject(Fault("status", method="POST", status=500))
    with pytest.raises(TwilioError) as caught:
        await send(rig.client(), rig.creds)
    err = caught.value
    assert err.unknown_outcome and not err.retryable
    assert "did not confirm whether the message was sent" in str(err)
    assert "not re-sent" in str(err) and "/twilio list" in str(err)
    assert posts(rig.sim) == 1 and rig.sleeps.delays == []


async def test_503_on_schedule_is_unknown_outcome(rig: Rig) -> None:
    """A scheduled send is a create too: a 503 is never retried."""
    rig.sim.inject(Fault("status", method="POST", status=503))
    send_at = rig.sim.clock.now() + timedelta(hours=1)
    with pytest.raises(TwilioError) as caught:
        await rig.client().send(
            rig.creds, to=TO, body="later", messaging_service_sid=DEFAULT_SERVICE_SID, send_at=send_at
        )
    assert caught.value.unknown_outcome and posts(rig.sim) == 1


async def test_5xx_on_delete_is_retried(rig: Rig) -> None:
    """A delete that got a 500 is tried again and succeeds."""
    client = rig.client()
    sid = await send(client, rig.creds)
    rig.sim.clock.advance(timedelta(seconds=5))
    rig.sim.inject(Fault("status", method="DELETE", status=500))
    await client.delete(rig.creds, sid)
    assert sid not in rig.sim.messages


# ── dropped connections and timeouts ─────────────────────────────────────────────────────────────────


async def test_reset_on_get_is_retried(rig: Rig) -> None:
    """A connection closed without an answer on a read is tried again (by aiohttp itself, or by us)."""
    client = rig.client()
    sid = await send(client, rig.creds)
    rig.sim.inject(Fault("reset", method="GET"))
    assert (await client.fetch(rig.creds, sid)).sid == sid
    assert sum(1 for r in rig.sim.requests if r.method == "GET") == 2


async def test_reset_on_create_is_unknown_outcome(rig: Rig) -> None:
    """A connection closed before answering a send cannot be told from one closed after: no re-send."""
    rig.sim.inject(Fault("reset", method="POST"))
    with pytest.raises(TwilioError) as caught:
        await send(rig.client(), rig.creds)
    assert caught.value.unknown_outcome and "not re-sent" in str(caught.value)
    assert posts(rig.sim) == 1


async def test_apply_then_reset_on_create_leaves_exactly_one_message(rig: Rig) -> None:
    """The message was stored before the connection dropped: the client reports unknown, never re-sends."""
    rig.sim.inject(Fault("apply_then_reset", method="POST"))
    with pytest.raises(TwilioError) as caught:
        await send(rig.client(), rig.creds)
    assert caught.value.unknown_outcome
    assert posts(rig.sim) == 1 and len(rig.sim.messages) == 1


async def test_apply_then_hold_on_create_times_out_as_unknown_outcome(rig: Rig) -> None:
    """A send stored but never answered times out (0.2 s) as unknown outcome, with one create only."""
    rig.sim.inject(Fault("apply_then_hold", method="POST"))
    with pytest.raises(TwilioError) as caught:
        await send(rig.client(timeout=0.2), rig.creds)
    err = caught.value
    assert err.unknown_outcome and "no answer within 0.2 s" in str(err)
    assert posts(rig.sim) == 1 and len(rig.sim.messages) == 1
    rig.sim.release_held()


async def test_apply_then_hold_on_cancel_is_unknown_outcome(rig: Rig) -> None:
    """A cancel with no answer is not retried either; the user is told to fetch the message."""
    client = rig.client(timeout=0.2)
    send_at = rig.sim.clock.now() + timedelta(hours=1)
    sid = (
        await client.send(
            rig.creds, to=TO, body="later", messaging_service_sid=DEFAULT_SERVICE_SID, send_at=send_at
        )
    ).sid
    rig.sim.inject(Fault("apply_then_hold", method="POST", path_contains=sid))
    with pytest.raises(TwilioError) as caught:
        await client.cancel(rig.creds, sid)
    assert caught.value.unknown_outcome and "canceled" in str(caught.value)
    assert sum(1 for r in rig.sim.requests if r.path.endswith(f"{sid}.json")) == 1
    rig.sim.release_held()


async def test_timeout_on_get_is_retried(rig: Rig) -> None:
    """A read slower than the timeout is tried again and the second, prompt answer wins."""
    rig.sim.inject(Fault("latency", method="GET", seconds=0.5))
    info = await rig.client(timeout=0.2).verify_account(rig.creds)
    assert info.sid == rig.creds.account_sid and len(rig.sleeps.delays) == 1


async def test_latency_below_the_timeout_succeeds(rig: Rig) -> None:
    """A slow but timely answer is just an answer: no retry."""
    rig.sim.inject(Fault("latency", method="POST", seconds=0.05))
    await send(rig.client(timeout=5.0), rig.creds)
    assert rig.sleeps.delays == [] and len(rig.sim.messages) == 1


async def test_delete_applied_but_unanswered_counts_as_done(rig: Rig) -> None:
    """Delete applied, answer lost to a timeout, retry gets 404: gone as asked, so it succeeds."""
    client = rig.client(timeout=0.2)
    sid = await send(client, rig.creds)
    rig.sim.clock.advance(timedelta(seconds=5))
    rig.sim.inject(Fault("apply_then_hold", method="DELETE"))
    assert await client.delete(rig.creds, sid) is None
    assert sid not in rig.sim.messages and len(rig.sleeps.delays) == 1
    rig.sim.release_held()


async def test_404_on_a_first_delete_is_an_error(rig: Rig) -> None:
    """Without an earlier unanswered try, deleting an unknown SID is Twilio's 20404."""
    with pytest.raises(TwilioError) as caught:
        await rig.client().delete(rig.creds, "SM" + "4" * 32)
    assert caught.value.code == 20404


# ── nobody listening ─────────────────────────────────────────────────────────────────────────────────


async def test_connection_refused_is_retried_then_a_clear_error(
    http_session: aiohttp.ClientSession, sim_creds: Credentials, fake_sleep: RecordingSleep
) -> None:
    """A refused connection is retried max_attempts times, then names the host, never the secret."""
    port = unused_port()
    client = TwilioClient(http_session, f"http://127.0.0.1:{port}", max_attempts=3, sleep=fake_sleep)
    with pytest.raises(TwilioError) as caught:
        await client.fetch(sim_creds, "SM" + "1" * 32)
    err = caught.value
    assert str(err).startswith(f"Could not reach Twilio at http://127.0.0.1:{port} (connection refused)")
    assert err.retryable and not err.unknown_outcome and len(fake_sleep.delays) == 2
    assert sim_creds.secret not in str(err) + repr(err)


async def test_connection_refused_on_send_is_retried_and_says_nothing_was_sent(
    http_session: aiohttp.ClientSession, sim_creds: Credentials, fake_sleep: RecordingSleep
) -> None:
    """A create whose connection was refused never left, so retrying it is safe and nothing was sent."""
    client = TwilioClient(http_session, f"http://127.0.0.1:{unused_port()}", max_attempts=2, sleep=fake_sleep)
    with pytest.raises(TwilioError) as caught:
        await send(client, sim_creds)
    assert not caught.value.unknown_outcome and "Nothing was sent." in str(caught.value)
    assert len(fake_sleep.delays) == 1


async def test_refused_then_up_succeeds(
    http_session: aiohttp.ClientSession, twilio_sim: TwilioSimulator, sim_creds: Credentials
) -> None:
    """A refused first try followed by a listening server sends exactly once."""
    refused = TwilioClient(http_session, f"http://127.0.0.1:{unused_port()}", max_attempts=1)
    with pytest.raises(TwilioError):
        await send(refused, sim_creds)
    await send(TwilioClient(http_session, twilio_sim.url), sim_creds)
    assert len(twilio_sim.creates()) == 1


# ── answers the simulator never gives ────────────────────────────────────────────────────────────────


@dataclass
class Scripted:
    """A loopback server answering each request with the next scripted (status, body, headers)."""

    replies: list[tuple[int, bytes, dict[str, str]]]
    seen: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    """Start a scripted server; tests fill `replies` before calling it."""
    script = Scripted(replies=[])

    async def handle(request: web.Request) -> web.Response:
        script.seen.append(f"{request.method} {request.path_qs}")
        status, body, headers = script.replies.pop(0)
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    script.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield script
    finally:
        await runner.cleanup()


HTML = {"Content-Type": "text/html"}
JSON = {"Content-Type": "application/json"}
CREDS = Credentials("AC" + "1" * 32, "scripted-secret-token")


async def test_html_502_from_a_proxy_on_a_read_says_the_status(
    http_session: aiohttp.ClientSession, scripted: Scripted, fake_sleep: RecordingSleep
) -> None:
    """A non-JSON 502 on a read is retried, then becomes a sentence with the HTTP status, no markup."""
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    scripted.replies = [(502, page, HTML), (502, page, HTML)]
    client = TwilioClient(http_session, scripted.url, max_attempts=2, sleep=fake_sleep)
    with pytest.raises(TwilioError) as caught:
        await client.verify_account(CREDS)
    err = caught.value
    assert "HTTP 502" in str(err) and "<" not in str(err) and err.code is None and err.retryable


async def test_html_502_on_a_send_is_unknown_outcome(
    http_session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A proxy's 502 to a send might hide a sent message: unknown outcome, one request."""
    scripted.replies = [(502, b"<html>Bad Gateway</html>", HTML)]
    client = TwilioClient(http_session, scripted.url)
    with pytest.raises(TwilioError) as caught:
        await client.send(CREDS, to=TO, body="hi", from_=DEFAULT_FROM)
    assert caught.value.unknown_outcome and "HTTP 502" in str(caught.value)
    assert len(scripted.seen) == 1


async def test_garbage_2xx_to_a_send_is_unknown_outcome(
    http_session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A 201 whose body is not a message means it was probably sent: say so, never re-send."""
    scripted.replies = [(201, b"OK", {"Content-Type": "text/plain"})]
    client = TwilioClient(http_session, scripted.url)
    with pytest.raises(TwilioError) as caught:
        await client.send(CREDS, to=TO, body="hi", from_=DEFAULT_FROM)
    assert caught.value.unknown_outcome and "/twilio list" in str(caught.value)


async def test_garbage_2xx_to_a_read_is_a_clear_error(
    http_session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A 200 that is JSON but not a message is a TwilioError with a sentence, not a KeyError."""
    scripted.replies = [(200, b'{"unexpected": true}', JSON)]
    client = TwilioClient(http_session, scripted.url)
    with pytest.raises(TwilioError, match="could not be understood"):
        await client.fetch(CREDS, "SM" + "1" * 32)


async def test_an_error_echoing_the_secret_is_redacted(
    http_session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Even if an error message repeats the secret, it never reaches the error text."""
    body = b'{"code": 99999, "message": "bad token scripted-secret-token", "status": 400}'
    scripted.replies = [(400, body, JSON)]
    client = TwilioClient(http_session, scripted.url)
    with pytest.raises(TwilioError) as caught:
        await client.verify_account(CREDS)
    assert CREDS.secret not in str(caught.value) + repr(caught.value) + caught.value.message
    assert "(Twilio error 99999)" in str(caught.value)


async def test_retry_after_as_an_http_date_is_honoured(
    http_session: aiohttp.ClientSession, scripted: Scripted, fake_sleep: RecordingSleep
) -> None:
    """Retry-After may be an HTTP date; the wait is the time until then."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    account = b'{"sid": "AC' + b"1" * 32 + b'", "friendly_name": "x", "status": "active", "type": "Full"}'
    scripted.replies = [(429, b"{}", {"Retry-After": when, **JSON}), (200, account, JSON)]
    await TwilioClient(http_session, scripted.url, sleep=fake_sleep).verify_account(CREDS)
    [delay] = fake_sleep.delays
    assert 15 <= delay <= 20

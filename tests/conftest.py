"""Shared fixtures: an HTTP session, the Twilio simulator, Prism serving Twilio's spec, and helpers.

`twilio_backend` runs a test twice, against `bot.sandbox.twilio` (which also lets tests check semantics)
and against Prism mocking Twilio's own OpenAPI spec (which checks our requests are what Twilio documents).
Without Prism or the spec the Prism half skips and says why, except in CI (`CI=true`), where it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple, NoReturn

import aiohttp
import pytest
from botproc import FarEnds, start_far_ends, store_account, unused_port
from harness import Stack, start_stack, stop_stack
from hypothesis import HealthCheck, settings
from sandbox_helpers import START, FakeClock
from waiting import until_sync

from bot.sandbox.twilio import SANDBOX_ACCOUNT, SimClock, TwilioSimulator
from bot.twilio import Credentials

REPO_ROOT = Path(__file__).resolve().parents[1]

# No property test checks speed, so a slow example on a busy machine is not a failure: without these,
# Hypothesis fails an example over 200 ms (or a slow generator) as flaky when two cores are busy.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")
TWILIO_OAI = Path(__file__).parents[1].parent / "shared" / "twilio-oai"
PRISM_SPEC = TWILIO_OAI / "twilio_messages_mock.json"
PRISM_BIN = REPO_ROOT / ".cache" / "prism" / "node_modules" / ".bin" / "prism"
PRISM_START_SECONDS = 60.0

# Prism checks the SID patterns only; its list links point at this account, so tests use it too.
PRISM_CREDS = Credentials(account_sid="AC" + "a" * 32, secret="prism-auth-token-0000")


def _unavailable(reason: str) -> NoReturn:
    """Skip locally, but fail in CI: there the contract tests must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the contract tests must run)", pytrace=False)
    pytest.skip(reason)


# ── HTTP session ─────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def http_violations() -> list[str]:
    """Request violations Prism reported in `sl-violations` headers during the test (should stay empty)."""
    return []


@pytest.fixture
async def http_session(http_violations: list[str]) -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp session for the test, closed afterwards; it records Prism's request violations."""

    async def on_request_end(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        header = params.response.headers.get("sl-violations")
        if not header:
            return
        with contextlib.suppress(ValueError):
            found = json.loads(header)
            if isinstance(found, list) and not any(
                isinstance(v, dict) and v.get("location", [None])[0] == "request" for v in found
            ):
                return
        http_violations.append(f"{params.method} {params.url}: {header}")

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield session


@dataclass
class RecordingSleep:
    """A stand-in for asyncio.sleep that records the delays it was asked for and returns at once."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser: keeps cookies, even for 127.0.0.1 (redirects are followed or not per request)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.fixture
def slack_clock() -> FakeClock:
    """A settable clock for a Slack simulator (`clock=`): tests move `.now` on."""
    return FakeClock()


@pytest.fixture
def clock() -> SimClock:
    """The simulated clock a Twilio simulator test starts its simulator on (at START)."""
    return SimClock(START)


@pytest.fixture
def fake_sleep() -> RecordingSleep:
    """The injectable sleep for TwilioClient: tests read `.delays` and never wait."""
    return RecordingSleep()


# ── the Twilio simulator ─────────────────────────────────────────────────────────────────────────────


SIM_AUTH_TOKEN = "sim-auth-token-0123456789"
SIM_API_KEY_SID = "SK" + "fedcba9876543210" * 2
SIM_API_KEY_SECRET = "sim-api-key-secret-0123456789"


@pytest.fixture
async def twilio_sim() -> AsyncIterator[TwilioSimulator]:
    """A started TwilioSimulator with the sandbox account (plus one API key), stopped afterwards."""
    sim = TwilioSimulator(clock=SimClock())
    sim.add_account(
        SANDBOX_ACCOUNT.sid,
        SIM_AUTH_TOKEN,
        friendly_name=SANDBOX_ACCOUNT.friendly_name,
        numbers=SANDBOX_ACCOUNT.numbers,
        services=(SANDBOX_ACCOUNT.service_sid,),
        api_keys={SIM_API_KEY_SID: SIM_API_KEY_SECRET},
    )
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
def sim_creds() -> Credentials:
    """Credentials (account SID and auth token) of the sandbox account in `twilio_sim`."""
    return Credentials(account_sid=SANDBOX_ACCOUNT.sid, secret=SIM_AUTH_TOKEN)


@pytest.fixture
def sim_key_creds() -> Credentials:
    """API key credentials (SK… and its secret) for the sandbox account in `twilio_sim`."""
    return Credentials(
        account_sid=SANDBOX_ACCOUNT.sid, secret=SIM_API_KEY_SECRET, api_key_sid=SIM_API_KEY_SID
    )


# ── Prism serving Twilio's spec ──────────────────────────────────────────────────────────────────────


def _prism_binary() -> str | None:
    if PRISM_BIN.exists():
        return str(PRISM_BIN)
    return shutil.which("prism")


@pytest.fixture(scope="session")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prism mocking Twilio's Messages spec on a free loopback port; yields its base URL."""
    if not PRISM_SPEC.is_file():
        _unavailable(f"Twilio's spec for Prism is missing: {PRISM_SPEC}")
    binary = _prism_binary()
    if binary is None:
        _unavailable(f"Prism is not installed ({PRISM_BIN} or prism on PATH); run `make prism`")
    port = unused_port()
    log_path = tmp_path_factory.mktemp("prism") / "prism.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [binary, "mock", "-h", "127.0.0.1", "-p", str(port), "-v", "warn", str(PRISM_SPEC)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    try:
        _wait_for_port(proc, port, log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    """Return once Prism accepts connections; skip (or fail in CI) if it exits or never listens."""

    def listening_or_gone() -> bool:
        if proc.poll() is not None:
            return True
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    try:
        until_sync(listening_or_gone, timeout=PRISM_START_SECONDS, what=f"Prism to listen on port {port}")
    except AssertionError as err:
        _unavailable(str(err))
    if proc.returncode is not None:
        tail = log_path.read_text(errors="replace")[-800:]
        _unavailable(f"Prism exited with code {proc.returncode} before listening: {tail}")


# ── one test, two backends ───────────────────────────────────────────────────────────────────────────


class Backend(NamedTuple):
    """Where a parametrised client test points: base URL, credentials, and which backend it is."""

    base_url: str
    creds: Credentials
    kind: str


@pytest.fixture(params=["simulator", pytest.param("prism", marks=pytest.mark.contract)])
def twilio_backend(request: pytest.FixtureRequest) -> Backend:
    """(base_url, creds, kind) for the simulator and for Prism; Prism's half carries the `contract` mark."""
    if request.param == "prism":
        return Backend(request.getfixturevalue("prism"), PRISM_CREDS, "prism")
    sim = request.getfixturevalue("twilio_sim")
    return Backend(sim.url, request.getfixturevalue("sim_creds"), "simulator")


@pytest.fixture
def backend_sim(request: pytest.FixtureRequest, twilio_backend: Backend) -> TwilioSimulator | None:
    """The running simulator behind `twilio_backend`, or None when the backend is Prism."""
    if twilio_backend.kind != "simulator":
        return None
    return request.getfixturevalue("twilio_sim")


# ── the whole bot ────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """The real bot server wired to the Slack and Twilio simulators, with one Twilio account stored.

    `@pytest.mark.stack(**settings)` on a test or module (`pytestmark`) starts it with those settings.
    """
    marker = request.node.get_closest_marker("stack")
    running = await start_stack(tmp_path / "bot.db", **(marker.kwargs if marker else {}))
    try:
        yield running
    finally:
        await stop_stack(running)


@pytest.fixture
async def make_stack(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    """Start a bot stack with other settings (`admin_user_ids=…`, `with_account=False`), stopped after."""
    started: list[Stack] = []

    async def make(**settings: Any) -> Stack:
        running = await start_stack(tmp_path / f"bot-{len(started)}.db", **settings)
        started.append(running)
        return running

    try:
        yield make
    finally:
        for running in started:
            await stop_stack(running)


@pytest.fixture
async def far_ends() -> AsyncIterator[FarEnds]:
    """Slack and Twilio simulators in the test's loop, for a bot run in another process (tests/botproc.py)."""
    running = await start_far_ends()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def bot_db(far_ends: FarEnds, tmp_path: Path) -> Path:
    """A database file for a bot process, holding the sandbox Twilio account as `/twilio setup` leaves it."""
    db_path = tmp_path / "bot.db"
    await store_account(far_ends, db_path)
    return db_path


@pytest.fixture
async def socket_far_ends() -> AsyncIterator[FarEnds]:
    """Like far_ends, but Slack delivers commands only over Socket Mode (to a bot with botproc.APP_TOKEN)."""
    running = await start_far_ends(socket_mode=True)
    try:
        yield running
    finally:
        await running.stop()


# ── storage on both engines (issue 10) ───────────────────────────────────────────────────────────────
# The parametrised `db` fixture (SQLite and PostgreSQL) and its helpers live in storage_fixtures.py.

from storage_fixtures import db, db_target, postgres_schema, postgres_server, proxied  # noqa: E402, F401

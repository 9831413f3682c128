"""Adding an account is one operation: the setup form and `accounts add` check, refuse, store, audit."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from bot.cli import main_accounts
from bot.operations import Context
from bot.sandbox.twilio import TwilioSimulator
from bot.services import Stores, build_services
from bot.settings import Settings
from bot.slack.forms import FieldErrors, parse_submission
from bot.twilio.client import TwilioClient
from bot.workspace import AccountSetup, SetupRefused, Workspace
from storage.db import Database

TEAM = "T0123ABCD"
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "9f86d081884c7d659a2feaa0c55ad015"
KEY = Fernet.generate_key().decode()
ADMIN = Context(team_id=TEAM, user_id="U0ADMIN01", channel_id="C0GENERAL")


@dataclass
class Opened:
    """A workspace service over a fresh database, and the stores under it."""

    workspace: Workspace
    stores: Stores


async def _suspended_twilio(status: str) -> tuple[web.AppRunner, str]:
    """A stand-in for Twilio's account check that answers with the given account status."""

    async def account(request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        return web.json_response({"sid": sid, "friendly_name": "Old shop", "status": status, "type": "Full"})

    app = web.Application()
    app.router.add_get("/2010-04-01/Accounts/{sid}.json", account)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[tuple[Opened, TwilioSimulator]]:
    """The workspace service on the Twilio simulator, which knows one account."""
    sim = TwilioSimulator()
    url = await sim.start()
    sim.add_account(SID, TOKEN, friendly_name="Acme")
    db = await Database.connect(tmp_path / "bot.db", secret_keys=KEY)
    stores = Stores.over(db)
    settings = Settings(database_path=tmp_path / "bot.db", twilio_api_url=url)
    async with aiohttp.ClientSession() as session:
        twilio = TwilioClient(session, url, max_attempts=1)
        services = build_services(settings, stores, twilio, clock=sim.clock.now)
        yield Opened(services.workspace, stores), sim
    await db.close()
    await sim.stop()


async def test_set_up_checks_stores_and_audits(opened: tuple[Opened, TwilioSimulator]) -> None:
    """Right credentials: Twilio is asked, the account stored under its lower-case label, one audit line."""
    ws, sim = opened
    setup = AccountSetup(label="Main", account_sid=SID, secret=TOKEN)
    added = await ws.workspace.set_up_account(ADMIN, setup)
    assert added.account.label == "main" and added.checked is not None
    assert added.checked.friendly_name == "Acme"
    assert [r.path for r in sim.requests] == [f"/2010-04-01/Accounts/{SID}.json"]
    (entry,) = await ws.workspace.history(TEAM, 10)
    assert (entry.operation, entry.outcome, entry.user_id, entry.account_label) == (
        "setup",
        "ok",
        "U0ADMIN01",
        "main",
    )
    assert TOKEN not in repr(entry)


async def test_a_wrong_token_stores_and_audits_nothing(opened: tuple[Opened, TwilioSimulator]) -> None:
    """Twilio's 401 is a refusal on the secret; nothing is stored or audited."""
    ws, _ = opened
    with pytest.raises(SetupRefused) as info:
        await ws.workspace.set_up_account(ADMIN, AccountSetup(label="main", account_sid=SID, secret="0" * 32))
    assert info.value.field == "secret" and "rejected these credentials" in info.value.message
    assert await ws.workspace.accounts(TEAM) == []
    assert await ws.workspace.history(TEAM, 10) == []


async def test_a_label_storage_cannot_hold_is_refused_before_twilio(
    opened: tuple[Opened, TwilioSimulator],
) -> None:
    """The label rule runs before anything else: no Twilio call, nothing stored."""
    ws, sim = opened
    setup = AccountSetup(label="us.sales", account_sid=SID, secret=TOKEN)
    with pytest.raises(SetupRefused) as info:
        await ws.workspace.set_up_account(ADMIN, setup)
    assert info.value.field == "label"
    assert sim.requests == []


@pytest.mark.parametrize("status", ["suspended", "closed"])
async def test_a_suspended_or_closed_account_is_refused(tmp_path: Path, status: str) -> None:
    """Twilio says the account is not active: a sentence naming its status, nothing stored or audited."""
    runner, url = await _suspended_twilio(status)
    db = await Database.connect(tmp_path / "bot.db", secret_keys=KEY)
    try:
        stores = Stores.over(db)
        async with aiohttp.ClientSession() as session:
            workspace = Workspace(
                twilio=TwilioClient(session, url, max_attempts=1),
                account_store=stores.accounts,
                audit=stores.audit,
                teams=stores.teams,
            )
            setup = AccountSetup(label="main", account_sid=SID, secret=TOKEN)
            with pytest.raises(SetupRefused) as info:
                await workspace.set_up_account(ADMIN, setup)
            assert f"is {status}, so nothing was stored" in info.value.message
            assert info.value.field == "account_sid" and not info.value.unreachable
            assert await workspace.accounts(TEAM) == [] and await workspace.history(TEAM, 10) == []
    finally:
        await db.close()
        await runner.cleanup()


async def test_the_cli_refuses_a_suspended_account_like_the_form(tmp_path: Path) -> None:
    """`accounts add` goes through the same operation: a suspended account is refused in a sentence."""
    runner, url = await _suspended_twilio("suspended")
    env = {"DATABASE_PATH": str(tmp_path / "bot.db"), "SECRET_KEY": KEY, "TWILIO_API_URL": url}
    try:
        out, err = io.StringIO(), io.StringIO()
        argv = ["add", "--team", TEAM, "--label", "main", "--sid", SID]
        code = await asyncio.to_thread(
            main_accounts, argv, stdin=io.StringIO(TOKEN + "\n"), stdout=out, stderr=err, env=env
        )
    finally:
        await runner.cleanup()
    assert code == 1
    assert "is suspended, so nothing was stored" in err.getvalue()


async def test_the_cli_add_is_audited_like_the_form(tmp_path: Path) -> None:
    """`accounts add` leaves the same audit line as the setup form, by the CLI's user."""
    sim = TwilioSimulator()
    url = await sim.start()
    sim.add_account(SID, TOKEN, friendly_name="Acme")
    env = {"DATABASE_PATH": str(tmp_path / "bot.db"), "SECRET_KEY": KEY, "TWILIO_API_URL": url}
    try:
        out, err = io.StringIO(), io.StringIO()
        argv = ["add", "--team", TEAM, "--label", "main", "--sid", SID, "--added-by", "cli:ops"]
        code = await asyncio.to_thread(
            main_accounts, argv, stdin=io.StringIO(TOKEN + "\n"), stdout=out, stderr=err, env=env
        )
    finally:
        await sim.stop()
    assert code == 0, err.getvalue()
    db = await Database.connect(tmp_path / "bot.db", secret_keys=KEY)
    try:
        (entry,) = await Stores.over(db).audit.recent(TEAM, 10)
    finally:
        await db.close()
    assert (entry.operation, entry.outcome, entry.user_id) == ("setup", "ok", "cli:ops")
    assert "Acme" in entry.summary


def test_the_setup_form_and_the_cli_read_labels_by_one_rule() -> None:
    """A label the CLI refuses the form refuses too, and both store `US-Sales` as `us-sales`."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["add", "--team", TEAM, "--label", "us.sales", "--sid", SID, "--no-verify"]
    assert main_accounts(argv, stdin=io.StringIO(TOKEN), stdout=out, stderr=err, env={}) == 2
    assert "may use only" in err.getvalue()

    def form(label: str) -> dict[str, dict[str, dict[str, str]]]:
        fields = {"label": label, "account_sid": SID, "auth_token": TOKEN}
        return {name: {"value": {"value": value}} for name, value in fields.items()}

    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(FieldErrors) as info:
        parse_submission("twilio_setup", form("us.sales"), accounts=[], now=now)
    assert "may use only" in info.value.errors["label"]
    parsed = parse_submission("twilio_setup", form("US-Sales"), accounts=[], now=now)
    assert isinstance(parsed, AccountSetup) and parsed.label == "us-sales"

"""Secrets stay secret: a whole session leaves no auth token, API secret, signing secret or encryption key
in the logs, in anything shown in Slack, or in the database files; and rotate-key really rotates."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from deliveries import last_body
from harness import Stack, start_stack, stop_stack
from signing import post

from bot.cli import main_rotate_key
from bot.sandbox.slack import GENERAL_ID, OPS_ID, TEAM_ID
from bot.sandbox.twilio import (
    DEFAULT_FROM,
    DEFAULT_SERVICE_SID,
    SANDBOX_ACCOUNT,
    SANDBOX_ACCOUNT_SID,
    Fault,
)
from bot.slack.cards import ACTION_REFRESH
from bot.slack.modals import ACTION_ID
from storage.accounts import AccountStore
from storage.db import Database

AUTH_TOKEN = "authtoken-Q9f3Lk2Zp8Xw5Rt7Yb1N"
WRONG_TOKEN = "wrongtoken-M4c8Vn2Bx6Zq1Lp9Kd3"
API_KEY_SID = "SK" + "0123456789abcdef" * 2
API_SECRET = "apisecret-H7j2Gf5Ds9Wq3Er6Ty8U"
TO = "+15551234567"


def serve_known_credentials(stack: Stack) -> None:
    """Give the simulated Twilio account the auth token and API key this test types into the forms."""
    stack.twilio.add_account(
        SANDBOX_ACCOUNT_SID,
        AUTH_TOKEN,
        friendly_name=SANDBOX_ACCOUNT.friendly_name,
        numbers=SANDBOX_ACCOUNT.numbers,
        services=(SANDBOX_ACCOUNT.service_sid,),
        api_keys={API_KEY_SID: API_SECRET},
    )


async def set_up(stack: Stack, fields: dict[str, str | None], *, make_default: bool = False) -> Any:
    """`/twilio setup`, fill the form, submit; returns the bot's answer to the submission."""
    await stack.command("setup")
    view = stack.opened_view()
    values: dict[str, dict[str, Any]] = {
        name: {ACTION_ID: {"value": value}} for name, value in fields.items() if value is not None
    }
    if make_default:
        options = next(b for b in view["blocks"] if b.get("block_id") == "make_default")["element"]["options"]
        values["make_default"] = {ACTION_ID: {"selected_options": options[:1]}}
    answer = await stack.slack.submit_view(view["id"], values)
    await stack.settle()
    return answer


async def full_session(stack: Stack) -> None:
    """Setup (a wrong token, then the right one, then an API key), every command, and failures."""
    serve_known_credentials(stack)
    wrong = await set_up(
        stack, {"label": "main", "account_sid": SANDBOX_ACCOUNT_SID, "auth_token": WRONG_TOKEN}
    )
    assert "errors" in wrong.body  # refused on the form, and (checked below) without echoing the token
    await set_up(
        stack,
        {
            "label": "main",
            "account_sid": SANDBOX_ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "default_from": DEFAULT_FROM,
            "default_service": DEFAULT_SERVICE_SID,
        },
        make_default=True,
    )
    await set_up(
        stack,
        {
            "label": "keyed",
            "account_sid": SANDBOX_ACCOUNT_SID,
            "api_key_sid": API_KEY_SID,
            "api_secret": API_SECRET,
            "default_from": DEFAULT_FROM,
        },
    )
    accounts = await stack.runtime.stores.accounts.list(TEAM_ID)
    assert sorted(a.label for a in accounts) == ["keyed", "main"]

    for text in (
        "help",
        "accounts",
        f"send {TO} hello with the token",
        f"send {TO} hello with the key --account keyed",
        f"schedule {TO} in 2h see you later",
        "list",
        "list scheduled",
        f"list --to {TO} --limit 5",
        "history",
        f"log-channel <#{OPS_ID}|ops>",
        "frobnicate",
        "send 12 not a number",
        "send +15005550001 Twilio says no",
        "fetch SM" + "0" * 32,
        "list --account nosuchlabel",
    ):
        await stack.command(text)
    creates = stack.twilio.creates()
    sent, scheduled = creates[0].message_sid, creates[2].message_sid
    await stack.command(f"fetch {sent}")
    await stack.command(f"cancel {scheduled}")
    stack.twilio.clock.advance(timedelta(minutes=1))
    await stack.command(f"delete {sent}")
    card = next(c for c in stack.cards() if ACTION_REFRESH in json.dumps(c.get("blocks")))
    await stack.slack.click(GENERAL_ID, card["ts"], ACTION_REFRESH)
    await stack.settle()

    # Twilio trouble: a lost answer, an unknown outcome, and credentials Twilio stopped accepting.
    stack.twilio.inject(Fault("apply_then_reset", method="POST", path_contains="/Messages.json"))
    await stack.command(f"send {TO} answer lost")
    stack.twilio.inject(Fault("status", status=500, method="POST", path_contains="/Messages.json"))
    await stack.command(f"send {TO} outcome unknown")
    stack.twilio.add_account(SANDBOX_ACCOUNT_SID, "rotated-at-twilio-000", api_keys={})
    await stack.command("list")
    await stack.command("list --account keyed")
    await stack.command(f"send {TO} with revoked credentials")
    # A Slack retry, and a request that fails its signature check.
    await post(stack.bot_url, last_body(stack.slack, "slash_command"), secret=stack.signing_secret)
    await post(stack.bot_url, b"text=send", secret="not-the-signing-secret")
    await stack.settle()


def slack_saw(stack: Stack) -> str:
    """Everything that went to Slack or could be read there: API calls (views and their private_metadata,
    messages, ephemerals, response_url posts), what is shown now, and the bot's answers to deliveries."""
    parts = [json.dumps(call.args, ensure_ascii=False, default=str) for call in stack.slack.calls]
    parts += [json.dumps(call.response, ensure_ascii=False, default=str) for call in stack.slack.calls]
    parts.append(json.dumps(stack.slack.state(), ensure_ascii=False, default=str))
    parts.append(json.dumps(stack.slack.views, ensure_ascii=False, default=str))
    parts += [d.response.body for d in stack.slack.deliveries]
    parts += stack.slack.problems
    return "\n".join(parts)


def database_bytes(db_path: Path) -> dict[str, bytes]:
    """The raw bytes of the database and its WAL and shared-memory files."""
    files = [db_path, db_path.with_name(db_path.name + "-wal"), db_path.with_name(db_path.name + "-shm")]
    return {f.name: f.read_bytes() for f in files if f.exists()}


def leaks(secrets: dict[str, str], places: dict[str, str | bytes]) -> list[str]:
    """Which secret shows up where (also as UTF-8 bytes and in JSON-escaped form)."""
    found = []
    for secret_name, secret in secrets.items():
        forms = {secret, json.dumps(secret)[1:-1]}
        for place, content in places.items():
            if isinstance(content, bytes):
                hit = any(form.encode() in content for form in forms)
            else:
                hit = any(form in content for form in forms)
            if hit:
                found.append(f"{secret_name} in {place}")
    return found


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG."""
    caplog.set_level(logging.DEBUG)
    yield caplog


async def test_a_whole_session_leaks_no_secret(
    tmp_path: Path, all_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Logs (DEBUG, every logger, and stderr), Slack payloads and the raw database files hold no secret."""
    secret_key = Fernet.generate_key().decode()
    db_path = tmp_path / "bot.db"
    stack = await start_stack(db_path, secret_key=secret_key, with_account=False)
    try:
        await full_session(stack)
        raw_while_running = database_bytes(db_path)
    finally:
        await stop_stack(stack)
    out, err = capfd.readouterr()
    secrets = {
        "auth token": AUTH_TOKEN,
        "wrong auth token typed into the form": WRONG_TOKEN,
        "API key secret": API_SECRET,
        "signing secret": stack.signing_secret,
        "bot token": stack.bot_token,
        "encryption key": secret_key,
    }
    log_text = all_logs.text + "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in all_logs.records
    )
    places: dict[str, str | bytes] = {
        "the logs": log_text,
        "stdout": out,
        "stderr": err,
        "Slack": slack_saw(stack),
        **{f"{name} (running)": data for name, data in raw_while_running.items()},
        **{f"{name} (stopped)": data for name, data in database_bytes(db_path).items()},
    }
    assert len(all_logs.records) > 50  # the session really was logged at DEBUG
    assert raw_while_running  # and the database really was read
    assert leaks(secrets, places) == []
    assert not (tmp_path / "secret.key").exists()  # with SECRET_KEY set, no key file is written


async def test_rotate_key_then_the_bot_sends_with_only_the_new_key(tmp_path: Path) -> None:
    """Secrets stored under an old key; rotate-key with `new,old`; the bot, given only the new key, sends."""
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    db_path = tmp_path / "bot.db"
    stack = await start_stack(db_path, secret_key=old_key)
    token = stack.twilio_token
    await stop_stack(stack)

    out, err = io.StringIO(), io.StringIO()
    env = {"DATABASE_PATH": str(db_path), "SECRET_KEY": f"{new_key},{old_key}"}
    code = await asyncio.to_thread(main_rotate_key, [], stdout=out, stderr=err, env=env)
    assert code == 0, err.getvalue()
    assert "Re-encrypted 1 stored Twilio secret" in out.getvalue()
    assert new_key not in out.getvalue() + err.getvalue()
    assert old_key not in out.getvalue() + err.getvalue()

    # The old key alone can no longer read the stored secret; the new one alone can.
    old_only = await Database.connect(db_path, secret_keys=old_key)
    try:
        with pytest.raises(Exception, match="cannot be decrypted"):
            await AccountStore(old_only).credentials(TEAM_ID, None)
    finally:
        await old_only.close()

    again = await start_stack(db_path, secret_key=new_key, with_account=False)
    try:
        again.twilio.add_sandbox_account(token)  # the same Twilio account as before the rotation
        await again.command(f"send {TO} after the rotation")
        assert len(again.twilio.creates()) == 1
        assert "after the rotation" in json.dumps(again.cards()[-1]["blocks"])
    finally:
        await stop_stack(again)

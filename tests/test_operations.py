"""bot.operations on its own: reconciling a create left pending, and finding a create whose answer was lost.

Real parts only: the Twilio simulator over HTTP (its faults drop the answer after applying a create) and a
SQLite database in tmp_path. No Slack anywhere, as in the module under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from conftest import SIM_AUTH_TOKEN, RecordingSleep

from bot.core.commands import SendCommand, parse_command
from bot.operations import ACCOUNT_GONE, FOUND_AFTER_LOST_ANSWER, Context, Operations, Sent
from bot.sandbox.twilio import DEFAULT_FROM, SANDBOX_ACCOUNT_SID, Fault, TwilioSimulator
from bot.twilio import TwilioClient, TwilioError
from storage.accounts import AccountStore, NewAccount
from storage.audit import AuditLog
from storage.db import Database
from storage.outbox import NewOutboxEntry, Outbox, OutboxEntry

TEAM = "T0OPS"
TO = "+15551234567"
CTX = Context(team_id=TEAM, user_id="U0ADA", channel_id="C0GENERAL")
CREATE = {"method": "POST", "path_contains": "/Messages.json"}
LIST = {"method": "GET", "path_contains": "/Messages.json"}


@dataclass
class Parts:
    """Operations and the stores and simulator behind it."""

    ops: Operations
    sim: TwilioSimulator
    accounts: AccountStore
    outbox: Outbox
    audit: AuditLog


@pytest.fixture
async def parts(
    tmp_path: Path,
    twilio_sim: TwilioSimulator,
    http_session: aiohttp.ClientSession,
    fake_sleep: RecordingSleep,
) -> AsyncIterator[Parts]:
    """Operations over a fresh database holding the simulator's sandbox account as `main`."""
    db = await Database.connect(tmp_path / "bot.db")
    try:
        accounts, outbox, audit = AccountStore(db), Outbox(db), AuditLog(db)
        await accounts.add(
            NewAccount(
                team_id=TEAM,
                label="main",
                account_sid=SANDBOX_ACCOUNT_SID,
                secret=SIM_AUTH_TOKEN,
                default_from=DEFAULT_FROM,
                added_by="U0ADA",
            )
        )
        client = TwilioClient(http_session, twilio_sim.url, sleep=fake_sleep)
        # The simulator's clock is the bot's, as in the stack: the lookup compares Twilio's dates with it.
        ops = Operations(
            twilio=client, accounts=accounts, audit=audit, outbox=outbox, clock=twilio_sim.clock.now
        )
        yield Parts(ops, twilio_sim, accounts, outbox, audit)
    finally:
        await db.close()


def send_command(body: str) -> SendCommand:
    """`/twilio send TO body`, parsed as the bot parses it."""
    cmd = parse_command(f"send {TO} {body}", now=datetime.now(UTC), default_region="US")
    assert isinstance(cmd, SendCommand)
    return cmd


async def claim(parts: Parts, key: str, body: str) -> OutboxEntry:
    """An outbox row claimed for a send, as a process that then died mid-call leaves it."""
    entry, fresh = await parts.outbox.claim(
        NewOutboxEntry(
            key=key,
            team_id=TEAM,
            user_id=CTX.user_id,
            channel_id=CTX.channel_id or "",
            operation="send",
            request={"to": TO, "from": DEFAULT_FROM, "service": None, "body": body},
            account_label="main",
            account_sid=SANDBOX_ACCOUNT_SID,
        )
    )
    assert fresh
    return entry


async def twilio_has(parts: Parts, body: str) -> str:
    """Create a message at Twilio directly (the create the dead process made); its SID."""
    found = await parts.ops.credentials(TEAM, "main")
    assert found is not None
    message = await parts.ops.twilio.send(found[1], to=TO, body=body, from_=DEFAULT_FROM)
    return message.sid


def posts(sim: TwilioSimulator) -> int:
    """Message creates that reached Twilio, applied or not."""
    return sum(1 for r in sim.requests if r.method == "POST" and r.path.endswith("/Messages.json"))


# ── reconcile ───────────────────────────────────────────────────────────────────────────────────────


async def test_reconcile_settles_a_pending_row_as_sent_when_twilio_has_the_message(parts: Parts) -> None:
    """A row left pending whose create Twilio applied: found by To and body, settled sent, not re-sent."""
    entry = await claim(parts, "k-found", "made it before the crash")
    sid = await twilio_has(parts, "made it before the crash")
    found = await parts.ops.reconcile(entry)
    assert found is not None and found.sid == sid
    settled = await parts.outbox.get("k-found")
    assert settled is not None and (settled.state, settled.message_sid) == ("sent", sid)
    assert posts(parts.sim) == 1


async def test_reconcile_marks_the_row_unknown_when_twilio_has_no_such_message(parts: Parts) -> None:
    """No message with that To and body at Twilio: unknown, with why, and still nothing is sent."""
    entry = await claim(parts, "k-missing", "never reached Twilio")
    await twilio_has(parts, "some other text")
    assert await parts.ops.reconcile(entry) is None
    settled = await parts.outbox.get("k-missing")
    assert settled is not None and settled.state == "unknown" and settled.message_sid is None
    assert "not re-sent" in (settled.error_message or "")
    assert posts(parts.sim) == 1


@pytest.mark.parametrize("change", ["removed", "replaced by another SID"])
async def test_reconcile_of_a_row_whose_account_is_gone_is_unknown_without_asking_twilio(
    parts: Parts, change: str
) -> None:
    """The row's account was removed, or its label now names another account: unknown, ACCOUNT_GONE."""
    entry = await claim(parts, "k-gone", "account went away")
    if change == "removed":
        assert await parts.accounts.remove(TEAM, "main")
    else:
        await parts.accounts.add(
            NewAccount(
                team_id=TEAM, label="main", account_sid="AC" + "d" * 32, secret="other", added_by="U0ADA"
            )
        )
    assert await parts.ops.reconcile(entry) is None
    settled = await parts.outbox.get("k-gone")
    assert settled is not None and (settled.state, settled.error_message) == ("unknown", ACCOUNT_GONE)
    assert parts.sim.requests == []


async def test_reconcile_leaves_the_row_pending_when_twilio_cannot_be_asked(parts: Parts) -> None:
    """Twilio failing every read: reconcile raises and the row stays pending for the next start."""
    entry = await claim(parts, "k-later", "ask again later")
    parts.sim.inject(Fault("status", status=503, times=10, **LIST))
    with pytest.raises(TwilioError):
        await parts.ops.reconcile(entry)
    settled = await parts.outbox.get("k-later")
    assert settled is not None and settled.state == "pending"


# ── a create whose answer is lost ───────────────────────────────────────────────────────────────────


async def test_a_create_whose_answer_is_lost_is_found_by_looking_it_up(parts: Parts) -> None:
    """Twilio applies the create and the connection drops: the message is found, settled sent, told so."""
    parts.sim.inject(Fault("apply_then_reset", **CREATE))
    result = await parts.ops.create(CTX, send_command("answer lost"), key="k-lost")
    assert isinstance(result, Sent) and result.note == FOUND_AFTER_LOST_ANSWER
    assert list(parts.sim.messages) == [result.message.sid]
    assert posts(parts.sim) == 1
    settled = await parts.outbox.get("k-lost")
    assert settled is not None and (settled.state, settled.message_sid) == ("sent", result.message.sid)
    [entry] = await parts.audit.recent(TEAM)
    assert (entry.outcome, entry.message_sid) == ("ok", result.message.sid)


async def test_a_lost_answer_with_no_message_at_twilio_is_unknown_and_not_retried(parts: Parts) -> None:
    """The connection drops before Twilio applies anything: one POST, the error says unknown, row unknown."""
    parts.sim.inject(Fault("reset", **CREATE))
    with pytest.raises(TwilioError) as caught:
        await parts.ops.create(CTX, send_command("dropped"), key="k-dropped")
    assert caught.value.unknown_outcome
    assert parts.sim.messages == {} and posts(parts.sim) == 1
    settled = await parts.outbox.get("k-dropped")
    assert settled is not None and settled.state == "unknown"
    [entry] = await parts.audit.recent(TEAM)
    assert entry.outcome == "unknown"


async def test_the_lookup_skips_a_message_already_recorded_for_another_action(parts: Parts) -> None:
    """Same To and body sent twice: the lost second create is matched to its own message, not the first."""
    first = await parts.ops.create(CTX, send_command("same words"), key="k-first")
    assert isinstance(first, Sent) and first.note is None
    parts.sim.inject(Fault("apply_then_reset", **CREATE))
    second = await parts.ops.create(CTX, send_command("same words"), key="k-second")
    assert isinstance(second, Sent) and second.note == FOUND_AFTER_LOST_ANSWER
    assert second.message.sid != first.message.sid
    assert set(parts.sim.messages) == {first.message.sid, second.message.sid}


async def test_the_lookup_ignores_a_matching_message_from_before_the_claim(parts: Parts) -> None:
    """An hour-old message with the same To and body is not taken for the one whose answer was lost."""
    old = await twilio_has(parts, "déjà vu")
    parts.sim.clock.advance(timedelta(hours=1))
    parts.sim.inject(Fault("apply_then_reset", **CREATE))
    result = await parts.ops.create(CTX, send_command("déjà vu"), key="k-new")
    assert isinstance(result, Sent) and result.note == FOUND_AFTER_LOST_ANSWER
    assert result.message.sid != old

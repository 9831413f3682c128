"""Accepted means written down: a bot killed right after its ack still runs the command once, one card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botproc import (
    FarEnds,
    claim_pending_send,
    only_text,
    outbox_rows,
    record_accepted_send,
    recover,
    start_bot,
    table_rows,
)
from builders import accepted_send
from harness import form_values
from slack_sdk.web.async_client import AsyncWebClient
from waiting import until

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, TEAM_ID
from bot.slack.delivery import card_metadata
from storage.db import Database
from storage.journal import Journal

pytestmark = pytest.mark.slow

TO = "+15551230002"


def journal_rows(db_path: Path) -> list[dict[str, Any]]:
    """The journal as SQLite has it on disk."""
    return table_rows(db_path, "journal")


async def test_a_command_acked_then_killed_runs_once_after_the_restart(
    far_ends: FarEnds, bot_db: Path
) -> None:
    """kill -9 within 5 ms of "Working on it…": the restart sends it once, with one card saying why late."""
    bot = await start_bot(far_ends, bot_db, log_name="first")
    try:
        ack = await far_ends.slack.slash_command(f"send {TO} accepted before the crash")
        bot.kill()  # at once: the next statement after the ack is read (the window was 5 ms)
        assert ack.status == 200 and "Working on it" in ack.body
        assert await bot.wait() == -9
    finally:
        await bot.stop()
    [entry] = journal_rows(bot_db)
    assert entry["subcommand"] == "send" and entry["done_at"] is None

    await recover(far_ends, bot_db, log_name="second", what="the card after the restart")
    [create] = far_ends.twilio.creates()
    assert dict(create.form)["To"] == TO and dict(create.form)["Body"] == "accepted before the crash"
    text = only_text(far_ends.cards())
    assert "accepted before the crash" in text
    [row] = outbox_rows(bot_db)
    assert (row["state"], row["card_posted"]) == ("sent", 1)
    assert journal_rows(bot_db)[0]["done_at"] is not None


async def test_a_form_submitted_then_killed_runs_once_after_the_restart(
    far_ends: FarEnds, bot_db: Path
) -> None:
    """kill -9 within 5 ms of the submission's ack: the restart sends it once, one card."""
    bot = await start_bot(far_ends, bot_db, log_name="first")
    try:
        await far_ends.slack.slash_command("send")
        await until(lambda: bool(far_ends.slack.views), what="the send form")
        [(view_id, view)] = far_ends.slack.views.items()
        values = form_values(view, {"to": TO, "body": "submitted before the crash"})
        answer = await far_ends.slack.submit_view(view_id, values)
        bot.kill()  # at once: the next statement after the ack is read (the window was 5 ms)
        assert answer.status == 200 and view_id not in far_ends.slack.views  # the form closed
        await bot.wait()
    finally:
        await bot.stop()

    await recover(far_ends, bot_db, log_name="second", what="the card after the restart")
    [create] = far_ends.twilio.creates()
    assert dict(create.form)["Body"] == "submitted before the crash"
    assert "submitted before the crash" in only_text(far_ends.cards())
    assert [r["card_posted"] for r in outbox_rows(bot_db)] == [1]


async def test_an_accepted_command_too_old_to_send_is_reported_not_sent(
    far_ends: FarEnds, bot_db: Path
) -> None:
    """A request accepted longer ago than RECOVERY_MAX_AGE is not sent; its user gets a card to retry."""
    await record_accepted_send(
        far_ends,
        bot_db,
        key=f"cmd:{TEAM_ID}:old.trigger",
        fields={"to": TO, "body": "too late to send", "account": "main"},
        accepted_at=datetime.now(UTC) - timedelta(minutes=11),
    )

    await recover(far_ends, bot_db, what="the not-sent card", done=lambda: bool(far_ends.slack.ephemerals))
    assert far_ends.twilio.creates() == [] and far_ends.cards() == []
    [card] = far_ends.slack.ephemerals
    assert card["user"] == ADMIN_ID
    text = only_text([card])
    assert "Not sent" in text and "Nothing was sent" in text and "Edit and try again" in text
    assert journal_rows(bot_db)[0]["done_at"] is not None


async def test_a_card_posted_just_before_the_crash_is_adopted_not_posted_again(
    far_ends: FarEnds, bot_db: Path
) -> None:
    """The dead process posted the card but never noted it: the restart finds it by its metadata."""
    key = f"cmd:{TEAM_ID}:posted.then.killed"
    await claim_pending_send(far_ends, bot_db, key=key, to=TO, body="card already out")
    # What the dying process managed to do: the card, with its key in the metadata.
    slack = AsyncWebClient(token=far_ends.bot_token, base_url=far_ends.slack.api_url)
    await slack.chat_postMessage(channel=GENERAL_ID, text="card already out", metadata=card_metadata(key))

    bot = await recover(
        far_ends, bot_db, what="the row marked posted", done=lambda: outbox_rows_posted(bot_db)
    )
    assert len(far_ends.cards()) == 1
    assert "found in the channel" in bot.log()


def outbox_rows_posted(db_path: Path) -> bool:
    """Whether every outbox row is marked as having its card (read while the bot runs, WAL allows it)."""
    return all(row["card_posted"] for row in outbox_rows(db_path))


async def test_the_bot_forgets_journal_entries_done_more_than_a_week_ago(
    far_ends: FarEnds, bot_db: Path
) -> None:
    """What was asked (bodies included) is not kept for good: a start prunes entries done over a week ago."""
    async with await Database.connect(bot_db, secret_keys=far_ends.secret_key) as db:
        journal = Journal(db)
        for key in ("cmd:T:long-ago", "cmd:T:yesterday"):
            await journal.record(accepted_send(key, {"to": TO}))
            await journal.finish(key)
        old = (datetime.now(UTC) - timedelta(days=8)).isoformat()
        await db.execute("UPDATE journal SET done_at = ? WHERE key = ?", [old, "cmd:T:long-ago"])
    bot = await start_bot(far_ends, bot_db)
    try:
        await until(lambda: len(journal_rows(bot_db)) == 1, what="the old entry pruned")
    finally:
        bot.terminate()
        await bot.wait()
        await bot.stop()
    assert [row["key"] for row in journal_rows(bot_db)] == ["cmd:T:yesterday"]

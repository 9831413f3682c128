"""Nothing lost: a bot killed with -9 mid-create settles the row on restart, posts one card."""

from __future__ import annotations

from pathlib import Path

import pytest
from botproc import (
    FarEnds,
    claim_pending_send,
    only_text,
    outbox_rows,
    recover,
    start_bot,
    start_bot_mid_create,
)

from bot.sandbox.slack import TEAM_ID
from bot.sandbox.twilio import Fault

pytestmark = pytest.mark.slow

TO = "+15551230001"


async def test_kill_9_while_twilio_holds_an_applied_create(far_ends: FarEnds, tmp_path: Path) -> None:
    """Killed after Twilio applied the create, before its answer: the restart finds it, one card."""
    db_path = tmp_path / "bot.db"
    bot = await start_bot_mid_create(far_ends, db_path, f"send {TO} lost in the crash", log_name="first")
    try:
        bot.kill()
        assert await bot.wait() == -9
    finally:
        await bot.stop()
    far_ends.twilio.release_held()
    [pending] = outbox_rows(db_path)
    assert pending["state"] == "pending"  # the killed process never heard Twilio's answer
    assert far_ends.cards() == []

    await recover(far_ends, db_path, log_name="second")

    assert len(far_ends.twilio.creates()) == 1
    text = only_text(far_ends.cards())
    assert "lost in the crash" in text
    assert "after the bot restarted" in text
    [row] = outbox_rows(db_path)
    created = far_ends.twilio.creates()[0]
    assert (row["state"], row["message_sid"], row["card_posted"]) == ("sent", created.message_sid, 1)


async def test_a_claim_that_never_reached_twilio_gets_an_unknown_card(
    far_ends: FarEnds, bot_db: Path
) -> None:
    """A process that died between the claim and the call: restart says 'outcome unknown', sends nothing."""
    await claim_pending_send(
        far_ends, bot_db, key=f"cmd:{TEAM_ID}:1234.5678.dead", to=TO, body="never left the building"
    )

    await recover(far_ends, bot_db, what="the unknown-outcome card")

    assert far_ends.twilio.creates() == []
    text = only_text(far_ends.cards())
    assert "Outcome unknown" in text
    assert "Nothing was re-sent" in text
    assert "never left the building" in text
    [row] = outbox_rows(bot_db)
    assert (row["state"], row["card_posted"]) == ("unknown", 1)


async def test_a_restart_while_twilio_is_down_leaves_the_row_for_the_next_start(
    far_ends: FarEnds, tmp_path: Path
) -> None:
    """Recovery that cannot reach Twilio changes and posts nothing; the start after that settles it."""
    db_path = tmp_path / "bot.db"
    bot = await start_bot_mid_create(far_ends, db_path, f"send {TO} twice interrupted", log_name="first")
    try:
        bot.kill()
        await bot.wait()
    finally:
        await bot.stop()
    far_ends.twilio.release_held()

    # Every lookup fails (the client's retries included) during the second start.
    far_ends.twilio.inject(Fault("status", status=503, method="GET", times=100))
    second = await start_bot(far_ends, db_path, log_name="second", TWILIO_TIMEOUT="2")
    try:
        await second.wait_log("could not settle outbox row")
        second.terminate()
        assert await second.wait() == 0
    finally:
        await second.stop()
    assert far_ends.cards() == []
    assert outbox_rows(db_path)[0]["state"] == "pending"

    far_ends.twilio.clear_faults()
    await recover(far_ends, db_path, log_name="third")
    assert len(far_ends.twilio.creates()) == 1
    assert "twice interrupted" in only_text(far_ends.cards())

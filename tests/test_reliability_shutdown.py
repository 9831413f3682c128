"""Graceful shutdown: SIGTERM stops new work, lets running creates finish (bounded), closes the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from botproc import FarEnds, only_text, outbox_rows, recover, start_bot_mid_create

pytestmark = pytest.mark.slow

TO = "+15551230002"


def wal_is_empty(db_path: Path) -> bool:
    """True when the write-ahead log was checkpointed into the database file (or removed)."""
    wal = db_path.with_name(db_path.name + "-wal")
    return not wal.exists() or wal.stat().st_size == 0


async def test_sigterm_finishes_the_create_in_flight_and_exits_cleanly(
    far_ends: FarEnds, bot_db: Path
) -> None:
    """SIGTERM during a held create: no new work, the card still posted, exit 0, nothing pending."""
    bot = await start_bot_mid_create(far_ends, bot_db, f"send {TO} finish me first", LOG_LEVEL="DEBUG")
    try:
        bot.terminate()
        await bot.wait_log("shutting down")
        assert await bot.healthz() in (None, 503)  # new requests are turned away
        assert bot.proc.returncode is None  # still finishing the send

        far_ends.twilio.release_held()
        assert await bot.wait() == 0
    finally:
        await bot.stop()

    assert len(far_ends.twilio.creates()) == 1
    text = only_text(far_ends.cards())
    assert "finish me first" in text
    assert "Outcome unknown" not in text
    [row] = outbox_rows(bot_db)
    assert (row["state"], row["card_posted"]) == ("sent", 1)
    assert wal_is_empty(bot_db)
    log = bot.log()
    assert "Traceback" not in log
    # The whole DEBUG log of a real process, stderr included, names none of its secrets.
    for secret in (far_ends.twilio_token, far_ends.signing_secret, far_ends.bot_token, far_ends.secret_key):
        assert secret not in log


async def test_a_create_that_outlasts_the_shutdown_timeout_is_left_for_the_next_start(
    far_ends: FarEnds, bot_db: Path
) -> None:
    """Shutdown waits SHUTDOWN_TIMEOUT at most; the unfinished create stays pending for the next start."""
    bot = await start_bot_mid_create(
        far_ends, bot_db, f"send {TO} slower than the deadline", log_name="first", SHUTDOWN_TIMEOUT="0.5"
    )
    try:
        bot.terminate()
        assert await bot.wait(timeout=10) == 0  # the hold is never released: the drain deadline ends it
    finally:
        await bot.stop()
    far_ends.twilio.release_held()
    assert far_ends.cards() == []
    [row] = outbox_rows(bot_db)
    assert row["state"] == "pending"
    assert wal_is_empty(bot_db)

    await recover(far_ends, bot_db, log_name="second")
    assert len(far_ends.twilio.creates()) == 1
    assert "slower than the deadline" in only_text(far_ends.cards())

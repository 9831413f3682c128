"""Nothing lost: a bot killed with -9 mid-create settles the row on restart, posts one card."""

from __future__ import annotations

import json
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
    store_routed_account,
)
from signing import post
from waiting import until

from bot.sandbox.slack import ADMIN_ID, OPS_ID, TEAM_ID
from bot.sandbox.twilio import DEFAULT_FROM, Fault

pytestmark = pytest.mark.slow

TO = "+15551230001"


async def kill_mid_create(ends: FarEnds, bot_db: Path, text: str) -> None:
    """A first bot killed with -9 while Twilio holds its applied create for `/twilio <text>`; Twilio
    answers only once it is dead."""
    bot = await start_bot_mid_create(ends, bot_db, text, log_name="first")
    try:
        bot.kill()
        assert await bot.wait() == -9
    finally:
        await bot.stop()
    ends.twilio.release_held()


async def test_kill_9_while_twilio_holds_an_applied_create(far_ends: FarEnds, bot_db: Path) -> None:
    """Killed after Twilio applied the create, before its answer: the restart finds it, one card."""
    await kill_mid_create(far_ends, bot_db, f"send {TO} lost in the crash")
    [pending] = outbox_rows(bot_db)
    assert pending["state"] == "pending"  # the killed process never heard Twilio's answer
    assert far_ends.cards() == []

    await recover(far_ends, bot_db, log_name="second")

    assert len(far_ends.twilio.creates()) == 1
    text = only_text(far_ends.cards())
    assert "lost in the crash" in text
    assert "after the bot restarted" in text
    [row] = outbox_rows(bot_db)
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
    far_ends: FarEnds, bot_db: Path
) -> None:
    """Recovery that cannot reach Twilio changes and posts nothing; the start after that settles it."""
    await kill_mid_create(far_ends, bot_db, f"send {TO} twice interrupted")

    # Every lookup fails (the client's retries included) during the second start.
    far_ends.twilio.inject(Fault("status", status=503, method="GET", times=100))
    second = await start_bot(far_ends, bot_db, log_name="second", TWILIO_TIMEOUT="2")
    try:
        await second.wait_log("could not settle outbox row")
        second.terminate()
        assert await second.wait() == 0
    finally:
        await second.stop()
    assert far_ends.cards() == []
    assert outbox_rows(bot_db)[0]["state"] == "pending"

    far_ends.twilio.clear_faults()
    await recover(far_ends, bot_db, log_name="third")
    assert len(far_ends.twilio.creates()) == 1
    assert "twice interrupted" in only_text(far_ends.cards())


async def test_kill_9_mid_reply_then_slacks_retry_sends_no_second_text(
    far_ends: FarEnds, tmp_path: Path
) -> None:
    """A reply's create held by Twilio, the bot killed -9, restarted, Slack retries the event: one text."""
    db_path = tmp_path / "bot.db"
    await store_routed_account(far_ends, db_path)
    bot = await start_bot(far_ends, db_path, log_name="first")
    try:
        far_ends.twilio.set_sms_url(DEFAULT_FROM, f"{bot.url}/twilio/inbound")
        await far_ends.twilio.receive_text("+15550004444", DEFAULT_FROM, "where is my order?")
        await until(lambda: len(far_ends.cards(OPS_ID)) >= 2, what="the thread with the text")
        root_ts = far_ends.cards(OPS_ID)[0]["ts"]
        far_ends.twilio.inject(Fault("apply_then_hold", method="POST", path_contains="/Messages.json"))
        await far_ends.slack.post_message(OPS_ID, "on its way", user=ADMIN_ID, thread_ts=root_ts)
        await until(far_ends.twilio.wait_held(), what="Twilio to hold the reply's create")
        bot.kill()
        assert await bot.wait() == -9
    finally:
        await bot.stop()
    far_ends.twilio.release_held()
    (event,) = [
        d.body
        for d in far_ends.slack.event_deliveries
        if json.loads(d.body)["event"].get("text") == "on its way"
    ]

    again = await start_bot(far_ends, db_path, log_name="second")
    try:
        status, _ = await post(
            again.url, event, secret=far_ends.signing_secret, content_type="application/json",
            headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
        )  # fmt: skip
        assert status == 200
        await until(lambda: [r["card_posted"] for r in outbox_rows(db_path)] == [1], what="the row settled")
        again.terminate()
        assert await again.wait() == 0
    finally:
        await again.stop()
    replies = [c for c in far_ends.twilio.creates() if dict(c.form).get("Body") == "on its way"]
    assert len(replies) == 1

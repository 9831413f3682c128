"""Twilio misbehaving, through the whole bot: reads recover, creates never repeat, one clear outcome each."""

from __future__ import annotations

import pytest
from deliveries import looks_like_a_traceback, outcomes
from harness import Stack
from waiting import until

from bot.sandbox.twilio import Fault
from storage.outbox import OutboxEntry

TO = "+15551234567"
CREATE = {"method": "POST", "path_contains": "/Messages.json"}
LIST = {"method": "GET", "path_contains": "/Messages.json"}
TIMEOUT = 0.3
# A short Twilio timeout and tiny backoff, so every fault plays out in milliseconds.
pytestmark = pytest.mark.stack(twilio_backoff_base=0.001, twilio_timeout=TIMEOUT)


def the_outcome(stack: Stack) -> str:
    """The one thing the user saw (fails when there are none or several, or it shows a traceback)."""
    seen = outcomes(stack)
    assert len(seen) == 1, f"expected one outcome, got {len(seen)}: {seen}"
    assert not looks_like_a_traceback(seen[0])
    return seen[0]


async def only_row(stack: Stack) -> OutboxEntry:
    """The one outbox row."""
    keys = await stack.runtime.db.run(lambda db: [r["key"] for r in db.query("SELECT key FROM outbox")])
    assert len(keys) == 1, keys
    entry = await stack.runtime.stores.outbox.get(keys[0])
    assert entry is not None
    return entry


# ── creates ─────────────────────────────────────────────────────────────────────────────────────────


async def test_a_429_on_a_create_is_retried_after_retry_after(stack: Stack) -> None:
    """429 means Twilio did nothing: the create is retried (after Retry-After) and goes out once."""
    stack.twilio.inject(Fault("status", status=429, retry_after=0.01, times=2, **CREATE))
    await stack.command(f"send {TO} patience")
    posts = [r for r in stack.twilio.requests if r.method == "POST"]
    assert [r.status for r in posts] == [429, 429, 201]
    assert "patience" in the_outcome(stack)
    assert (await only_row(stack)).state == "sent"


async def test_a_create_refused_by_429_every_time_fails_clearly_and_sends_nothing(stack: Stack) -> None:
    """429 on every try: nothing was sent, and the user hears so with a way to try again."""
    stack.twilio.inject(Fault("status", status=429, retry_after=0, times=10, **CREATE))
    await stack.command(f"send {TO} never accepted")
    assert stack.twilio.creates() == []
    text = the_outcome(stack)
    assert "Outcome unknown" not in text
    assert "try again" in text.lower()
    assert (await only_row(stack)).state == "failed"


@pytest.mark.parametrize("status", [500, 503])
async def test_a_5xx_on_a_create_is_not_retried_and_says_unknown(stack: Stack, status: int) -> None:
    """A 5xx may hide an applied create: no retry; Twilio has no such message, so the card says unknown."""
    stack.twilio.inject(Fault("status", status=status, times=5, **CREATE))
    await stack.command(f"send {TO} five hundred")
    assert len([r for r in stack.twilio.requests if r.method == "POST"]) == 1
    assert stack.twilio.creates() == []
    text = the_outcome(stack)
    assert "Outcome unknown" in text
    assert "five hundred" in text
    assert (await only_row(stack)).state == "unknown"


async def test_a_connection_reset_before_the_create_is_not_retried(stack: Stack) -> None:
    """A dropped connection on a create: never retried, nothing at Twilio, one 'unknown' card."""
    stack.twilio.inject(Fault("reset", **CREATE))
    await stack.command(f"send {TO} dropped")
    assert len([r for r in stack.twilio.requests if r.method == "POST"]) == 1
    assert stack.twilio.creates() == []
    assert "Outcome unknown" in the_outcome(stack)


async def test_an_applied_create_whose_answer_is_lost_is_found_and_carded(stack: Stack) -> None:
    """Twilio stored the message but the answer never came back: the bot finds it and posts its real card."""
    stack.twilio.inject(Fault("apply_then_reset", **CREATE))
    await stack.command(f"send {TO} applied then lost")
    [create] = stack.twilio.creates()
    text = the_outcome(stack)
    assert "Outcome unknown" not in text
    assert "applied then lost" in text
    assert "answer was lost" in text
    row = await only_row(stack)
    assert (row.state, row.message_sid, row.card_posted) == ("sent", create.message_sid, True)


async def test_a_create_slower_than_the_timeout_is_not_retried(stack: Stack) -> None:
    """A create that outlasts TWILIO_TIMEOUT: no second try; Twilio applies it later; one 'unknown' card."""
    stack.twilio.inject(Fault("latency", seconds=TIMEOUT * 3, **CREATE))
    await stack.command(f"send {TO} too slow")
    text = the_outcome(stack)
    assert "Outcome unknown" in text
    await until(lambda: len(stack.twilio.creates()) == 1, what="the slow create to land")
    assert len([r for r in stack.twilio.requests if r.method == "POST"]) == 1
    assert len(outcomes(stack)) == 1


async def test_a_lost_answer_is_never_matched_to_an_older_identical_message(stack: Stack) -> None:
    """The same text sent earlier on purpose is not taken for the create whose answer was lost."""
    await stack.command(f"send {TO} same words")
    stack.twilio.inject(Fault("reset", **CREATE))
    await stack.command(f"send {TO} same words")
    assert len(stack.twilio.creates()) == 1
    cards = stack.cards()
    assert len(cards) == 2
    assert "Outcome unknown" in str(cards[-1].get("text"))


# ── reads ───────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", status=500, times=2, **LIST),
        Fault("status", status=503, times=3, **LIST),
        Fault("status", status=429, retry_after=0.01, times=2, **LIST),
        Fault("reset", times=2, **LIST),
        Fault("latency", seconds=TIMEOUT * 3, **LIST),
    ],
    ids=["500", "503", "429", "reset", "timeout"],
)
async def test_a_list_recovers_from_passing_trouble(stack: Stack, fault: Fault) -> None:
    """Reads are retried through 5xx, 429, dropped connections and timeouts: the list card arrives."""
    await stack.command(f"send {TO} something to list")
    stack.twilio.inject(fault)
    await stack.command(f"list --to {TO}")
    cards = stack.cards()
    assert len(cards) == 2
    assert "something to list" in str(cards[-1].get("blocks"))


async def test_a_fetch_recovers_from_a_reset(stack: Stack) -> None:
    """A dropped connection on a fetch is retried."""
    await stack.command(f"send {TO} fetch me")
    sid = stack.twilio.creates()[0].message_sid
    stack.twilio.inject(Fault("reset", method="GET", path_contains=f"/Messages/{sid}"))
    await stack.command(f"fetch {sid}")
    assert len(stack.cards()) == 2


async def test_a_read_that_keeps_failing_tells_the_user_once(stack: Stack) -> None:
    """Twilio down for every try of a list: one ephemeral sentence, no card, no traceback."""
    stack.twilio.inject(Fault("status", status=503, times=20, **LIST))
    await stack.command("list")
    assert stack.cards() == []
    text = the_outcome(stack)
    assert "Twilio" in text

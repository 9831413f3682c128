"""Chaos: hundreds of signed commands, the bot killed with -9 twice mid-burst, restarted on the same file.

Every acknowledged command ends with exactly one Twilio create and one card (or, when the crash came
between the claim and the call, no create and one card saying so); nothing is sent or shown twice.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest
from botproc import BotProcess, FarEnds, start_bot, start_worker
from harness import json_text
from waiting import until

pytestmark = pytest.mark.slow

TO = "+15551230004"
TOKEN = re.compile(r"chaos-(\d{4})")
# (first, end, kill after this many acks): the rest of a burst meets a dead bot and is not acked.
BURSTS = ((0, 250, 150), (250, 500, 150), (500, 600, None))
IN_FLIGHT = 16
UNSENT_WORDS = ("Outcome unknown", "Not sent")
DELAYED_WORDS = "Delayed by a bot restart"


async def _burst(
    ends: FarEnds, bot: BotProcess, numbers: range, kill_after: int | None, acked: set[int]
) -> None:
    """Send `numbers` as commands, IN_FLIGHT at a time; kill the bot once `kill_after` of them are acked."""
    limit = asyncio.Semaphore(IN_FLIGHT)
    mine: set[int] = set()

    async def one(n: int) -> None:
        async with limit:
            resp = await ends.slack.slash_command(f"send {TO} chaos-{n:04d}")
        if resp.status == 200 and "Working on it" in resp.body:
            acked.add(n)
            mine.add(n)
            if kill_after is not None and len(mine) == kill_after:
                bot.kill()

    await asyncio.gather(*(one(n) for n in numbers))


def _tokens(text: str) -> set[int]:
    return {int(found) for found in TOKEN.findall(text)}


@pytest.mark.parametrize("killed", ["bot", "worker"])
async def test_two_kills_mid_burst_lose_nothing_and_double_nothing(
    killed: str, far_ends: FarEnds, bot_db: Path
) -> None:
    """600 commands, kill -9 twice mid-burst: each acked one has one create (or one unsent card), one card.

    "bot": the one process is killed and restarted. "worker" (WORKER_PROCESS): the web process stays up
    and acks all 600, and the worker that runs them is killed and restarted.
    """
    acked: set[int] = set()
    web = (
        await start_bot(far_ends, bot_db, log_name="web", WORKER_PROCESS="1") if killed == "worker" else None
    )
    procs: list[BotProcess] = [web] if web else []
    try:
        for n, (first, end, kill_after) in enumerate(BURSTS):
            if web:
                proc = await start_worker(far_ends, bot_db, log_name=f"worker{n}")
            else:
                proc = await start_bot(far_ends, bot_db, log_name=f"bot{n}")
            procs.append(proc)
            await _burst(far_ends, proc, range(first, end), kill_after, acked)
            if kill_after is not None:
                assert await proc.wait() == -9
        await _every_acked_shown(far_ends, acked)
        for running in (p for p in reversed(procs) if p.proc.returncode is None):
            running.terminate()
            assert await running.wait() == 0
    finally:
        for proc in procs:
            await proc.stop()
    totals = _check_once_each(far_ends, acked)
    if web:
        assert totals["acked"] == BURSTS[-1][1], totals  # the web process never died: every command acked
    else:
        assert len(acked) >= 300, totals  # the bursts really went through the bots


async def _every_acked_shown(far_ends: FarEnds, acked: set[int]) -> None:
    """Wait until every acked command's number is on a card."""

    def shown() -> set[int]:
        return set().union(*(_tokens(json_text(card)) for card in far_ends.cards()))

    await until(lambda: acked <= shown(), timeout=30, what="a card for every acked command")


def _check_once_each(far_ends: FarEnds, acked: set[int]) -> dict[str, int]:
    """Every acked command has one card and one create (or an unsent card); nothing twice. The totals."""
    creates = Counter(n for c in far_ends.twilio.creates() for n in _tokens(dict(c.form).get("Body", "")))
    cards = Counter(n for card in far_ends.cards() for n in _tokens(json_text(card)))
    unsent = {
        n
        for card in far_ends.cards()
        if any(w in json_text(card) for w in UNSENT_WORDS)
        for n in _tokens(json_text(card))
    }
    totals = {
        "commands": BURSTS[-1][1],
        "acked": len(acked),
        "created": len(creates),
        "cards": sum(cards.values()),
        "unsent_cards": len(unsent),
        "run_after_restart": sum(DELAYED_WORDS in json_text(card) for card in far_ends.cards()),
        "duplicate_creates": sum(1 for v in creates.values() if v > 1),
        "duplicate_cards": sum(1 for v in cards.values() if v > 1),
        "run_though_not_acked": len((set(creates) | set(cards)) - acked),
    }
    print(f"\nchaos totals: {totals}")
    assert totals["duplicate_creates"] == 0 and totals["duplicate_cards"] == 0, totals
    for n in acked:
        assert cards[n] == 1, (n, totals)
        assert creates[n] == 1 or (creates[n] == 0 and n in unsent), (n, totals)
    return totals

"""Two `python -m bot serve` replicas on one PostgreSQL: a kill -9 mid-burst, and a database outage.

Each test has its own schema (`postgres_schema`). The far ends run in the test's loop (tests/botproc.py);
the replicas run with short leases so a dead replica's claims are taken over within seconds.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from botproc import BotProcess, FarEnds, record_accepted_send, start_bot, store_account
from harness import json_text
from psycopg.rows import dict_row
from storage_fixtures import Proxy, eventually
from waiting import until

from bot.sandbox.slack import TEAM_ID
from bot.sandbox.twilio import Fault
from bot.slack.modals import ACTION_ID
from bot.slack.recovery import TAKEN_OVER

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TO = "+15551230002"
# Short leases: a dead replica's claims run out 3 s after its last renewal; each replica looks every 0.5 s.
FAST_LEASES = {"OUTBOX_LEASE_SECONDS": "3", "RECONCILE_INTERVAL": "0.5", "DATABASE_POOL_SIZE": "3"}
TOKEN = re.compile(r"burst-(\d+)-end")


async def outbox_rows_pg(url: str) -> list[dict[str, Any]]:
    """The outbox as PostgreSQL has it."""
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        cursor = await conn.execute("SELECT * FROM outbox ORDER BY id")
        return list(await cursor.fetchall())


def tokens(texts: list[str]) -> list[int]:
    """The burst numbers named in `texts`, once per mention."""
    return [int(n) for text in texts for n in TOKEN.findall(text)]


def card_texts(ends: FarEnds) -> list[str]:
    """What every card the bot posted says."""
    return [str(c.get("text") or "") + "\n" + json_text(c.get("blocks") or []) for c in ends.cards()]


def create_bodies(ends: FarEnds) -> list[str]:
    """The Body of every create Twilio applied."""
    return [dict(r.form).get("Body", "") for r in ends.twilio.creates()]


@pytest.fixture
async def replicas(
    far_ends: FarEnds, postgres_schema: str, tmp_path: Path
) -> AsyncIterator[tuple[BotProcess, BotProcess]]:
    """Two bot processes on the test's schema, each with its own working folder and log."""
    await store_account(far_ends, postgres_schema)
    started: list[BotProcess] = []
    try:
        for name in ("a", "b"):
            home = tmp_path / name
            home.mkdir()
            started.append(
                await start_bot(
                    far_ends, home / "unused.db", log_name=name, DATABASE_URL=postgres_schema, **FAST_LEASES
                )
            )
        yield started[0], started[1]
    finally:
        for bot in started:
            await bot.stop()


async def test_kill_9_of_one_replica_mid_burst_loses_nothing_and_repeats_nothing(
    far_ends: FarEnds, replicas: tuple[BotProcess, BotProcess], postgres_schema: str
) -> None:
    """A burst split over two replicas, one killed with -9 while its creates sit at Twilio: the other
    takes its claims over once their leases run out; every command one create and one card."""
    a, b = replicas
    far_ends.twilio.inject(
        Fault("apply_then_hold", method="POST", path_contains="/Messages.json", times=10**6)
    )
    first = 16
    for n in range(first):
        far_ends.slack.set_bot_url(f"{(a if n % 2 == 0 else b).url}/slack/events")
        ack = await far_ends.slack.slash_command(f"send {TO} burst-{n}-end")
        assert ack.status == 200
    # Every create has reached Twilio and been applied; the answers are held back.
    await asyncio.wait_for(far_ends.twilio.wait_held(first), 20)
    a.kill()
    assert await a.wait() == -9
    far_ends.twilio.clear_faults()
    far_ends.twilio.release_held()

    # The burst goes on at the replica still alive.
    far_ends.slack.set_bot_url(f"{b.url}/slack/events")
    total = first + 8
    for n in range(first, total):
        ack = await far_ends.slack.slash_command(f"send {TO} burst-{n}-end")
        assert ack.status == 200

    await until(
        lambda: len(set(tokens(card_texts(far_ends)))) == total, timeout=30, what="a card per command"
    )
    b.terminate()
    assert await b.wait() == 0

    assert sorted(tokens(create_bodies(far_ends))) == list(range(total))  # one create each, none twice
    assert sorted(tokens(card_texts(far_ends))) == list(range(total))  # one card each, none twice
    taken_over = [t for t in card_texts(far_ends) if "after the bot restarted" in t]
    assert sorted(tokens(taken_over)) == list(range(0, first, 2))  # a's, found at Twilio, not re-sent
    rows = await outbox_rows_pg(postgres_schema)
    assert len(rows) == total
    assert all(r["state"] == "sent" and r["card_posted"] == 1 and r["lease_until"] is None for r in rows)
    assert sorted(r["attempts"] for r in rows) == [1] * (total - first // 2) + [2] * (first // 2)


async def test_what_a_dead_replica_accepted_but_never_claimed_is_sent_by_a_live_one(
    far_ends: FarEnds, replicas: tuple[BotProcess, BotProcess], postgres_schema: str
) -> None:
    """A command a replica wrote down and acknowledged, then died before claiming: once it is older than
    a lease, the live replicas' lease rounds run it; both try, one create and one card."""
    await record_accepted_send(
        far_ends,
        postgres_schema,
        key=f"cmd:{TEAM_ID}:dead-replica-1",
        fields={"to": TO, "body": "burst-50-end", "from": None, "account": None},
        accepted_at=datetime.now(UTC),
    )

    await until(lambda: 50 in tokens(card_texts(far_ends)), timeout=30, what="the taken-over card")
    for bot in replicas:
        bot.terminate()
        assert await bot.wait() == 0
    assert tokens(create_bodies(far_ends)) == [50]  # one create, although both replicas saw it
    [card] = [t for t in card_texts(far_ends) if 50 in tokens([t])]
    assert TAKEN_OVER.split(":")[0] in card
    [row] = await outbox_rows_pg(postgres_schema)
    assert (row["state"], row["card_posted"]) == ("sent", 1)


async def healthz(bot: BotProcess) -> tuple[int, dict[str, Any]]:
    """GET /healthz: status and JSON."""
    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as resp:
        return resp.status, await resp.json()


def said_to_user(ends: FarEnds) -> list[str]:
    """Everything shown to a user alone (ephemerals and response_url answers)."""
    return [str(e.get("text") or "") + "\n" + json_text(e.get("blocks") or []) for e in ends.slack.ephemerals]


async def test_a_database_outage_mid_burst_is_a_sentence_and_heals_without_a_restart(
    far_ends: FarEnds, postgres_schema: str, proxied: tuple[Proxy, str], tmp_path: Path
) -> None:
    """PostgreSQL unreachable (a proxy cut): commands then get the sentence and send nothing; once it is
    back, the same process sends again; nothing is sent twice."""
    await store_account(far_ends, postgres_schema)
    proxy, url = proxied
    bot = await start_bot(far_ends, tmp_path / "unused.db", DATABASE_URL=url, **FAST_LEASES)
    try:
        for n in range(4):
            await far_ends.slack.slash_command(f"send {TO} burst-{n}-end")
        await until(lambda: len(card_texts(far_ends)) == 4, what="the cards before the outage")
        await far_ends.slack.slash_command(f"send {TO}")  # opens the send form, to submit during the outage
        await until(lambda: any(c.ok for c in far_ends.slack.calls_to("views.open")), what="the form")
        [opened] = [c for c in far_ends.slack.calls_to("views.open") if c.ok]

        await proxy.stop()
        form_values = {"to": {ACTION_ID: {"value": TO}}, "body": {ACTION_ID: {"value": "burst-99-end"}}}
        submitted = await far_ends.slack.submit_view(opened.response["view"]["id"], form_values)
        assert submitted.status == 200
        assert "The bot's database is not answering; nothing was sent." in submitted.body
        acks = await asyncio.gather(
            *(far_ends.slack.slash_command(f"send {TO} burst-{n}-end") for n in range(4, 8))
        )
        assert [a.status for a in acks] == [200] * 4
        down = "The bot's database is not answering; nothing was sent."
        await until(
            lambda: sum(down in t for t in said_to_user(far_ends)) == 4, timeout=30, what="four sentences"
        )
        status, body = await healthz(bot)
        assert (status, body["engine"], body["database"]) == (503, "postgresql", "down")

        await proxy.start()

        async def answering() -> bool:
            return (await healthz(bot))[0] == 200

        await eventually(answering, what="the bot to see its database again", timeout=30)
        for n in range(8, 12):
            await far_ends.slack.slash_command(f"send {TO} burst-{n}-end")
        await until(lambda: len(card_texts(far_ends)) == 8, timeout=20, what="the cards after the outage")
        bot.terminate()
        assert await bot.wait() == 0
    finally:
        await bot.stop()

    expected = [0, 1, 2, 3, 8, 9, 10, 11]
    assert sorted(tokens(create_bodies(far_ends))) == expected
    assert sorted(tokens(card_texts(far_ends))) == expected
    assert "Traceback" not in bot.log()


async def test_an_outage_after_twilio_accepted_keeps_one_card_and_writes_the_outcome_later(
    far_ends: FarEnds, postgres_schema: str, proxied: tuple[Proxy, str], tmp_path: Path
) -> None:
    """The database goes away while Twilio holds an applied create: the card is posted from Twilio's
    answer (no "nothing was sent"), and the outcome reaches the outbox once the database is back,
    though the row's lease ran out meanwhile: one create, one card."""
    await store_account(far_ends, postgres_schema)
    proxy, url = proxied
    bot = await start_bot(far_ends, tmp_path / "unused.db", DATABASE_URL=url, **FAST_LEASES)
    try:
        far_ends.twilio.inject(Fault("apply_then_hold", method="POST", path_contains="/Messages.json"))
        await far_ends.slack.slash_command(f"send {TO} burst-0-end")
        await until(far_ends.twilio.wait_held(), what="Twilio to hold the create")
        await proxy.stop()
        far_ends.twilio.release_held()
        await until(lambda: len(card_texts(far_ends)) == 1, timeout=30, what="the card from Twilio's answer")
        await bot.wait_log("the outcome is kept and written later")
        status, _ = await healthz(bot)
        assert status == 503

        async def lease_ran_out() -> bool:
            [row] = await outbox_rows_pg(postgres_schema)  # read directly, not through the cut proxy
            return bool(datetime.fromisoformat(row["lease_until"]) < datetime.now(UTC))

        await eventually(lease_ran_out, what="the row's lease to run out during the outage")
        await proxy.start()

        async def written() -> bool:
            rows = await outbox_rows_pg(postgres_schema)
            return bool(rows) and rows[0]["card_posted"] == 1

        await eventually(written, what="the kept outcome to reach the outbox", timeout=30)
        bot.terminate()
        assert await bot.wait() == 0
    finally:
        await bot.stop()

    [row] = await outbox_rows_pg(postgres_schema)
    [create] = far_ends.twilio.creates()
    assert (row["state"], row["message_sid"], row["attempts"]) == ("sent", create.message_sid, 1)
    [card] = card_texts(far_ends)
    assert "burst-0-end" in card and "Outcome unknown" not in card
    assert not any("nothing was sent" in t for t in said_to_user(far_ends))

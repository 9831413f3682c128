"""WORKER_PROCESS=1: `serve` writes sends and schedules down and acks; `python -m bot work` runs them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from botproc import (
    BotProcess,
    FarEnds,
    hold_a_create,
    only_text,
    outbox_rows,
    start_bot,
    start_worker,
    store_account,
    table_rows,
)
from harness import form_values
from waiting import until

from bot.settings import SettingsError, load_settings

pytestmark = pytest.mark.slow

TO = "+15551230002"


def journal_done(db_path: Path) -> bool:
    """Whether every journal entry is marked done (read while the bot runs: WAL allows it)."""
    rows = table_rows(db_path, "journal")
    return bool(rows) and all(row["done_at"] is not None for row in rows)


async def metrics_of(proc: BotProcess) -> str:
    """The process's GET /metrics text."""
    async with aiohttp.ClientSession() as session, session.get(f"{proc.url}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


async def stop_all(*procs: BotProcess) -> None:
    """SIGTERM each process still running and wait for it (clean shut-downs)."""
    for proc in procs:
        if proc.proc.returncode is None:
            proc.terminate()
    for proc in procs:
        await proc.wait()
        await proc.stop()


async def test_the_worker_runs_what_the_web_process_acknowledged(far_ends: FarEnds, bot_db: Path) -> None:
    """A command and a form submission, acked by `serve`, are sent once with one card each by the worker."""
    web = await start_bot(far_ends, bot_db, log_name="web", WORKER_PROCESS="1")
    worker = await start_worker(far_ends, bot_db)
    try:
        ack = await far_ends.slack.slash_command(f"send {TO} from the command")
        assert ack.status == 200 and "Working on it" in ack.body
        await far_ends.slack.slash_command("send")
        await until(lambda: bool(far_ends.slack.views), what="the send form")
        [(view_id, view)] = far_ends.slack.views.items()
        answer = await far_ends.slack.submit_view(
            view_id, form_values(view, {"to": TO, "body": "from the form"})
        )
        assert answer.status == 200 and view_id not in far_ends.slack.views

        await until(lambda: len(far_ends.cards()) == 2 and journal_done(bot_db), what="both cards")
        # The web process only wrote them down; the worker called Twilio and ran the operations.
        web_metrics, worker_metrics = await metrics_of(web), await metrics_of(worker)
        assert 'bridge_commands_total{outcome="accepted",subcommand="send"} 1.0' in web_metrics
        assert "bridge_twilio_requests_total{" not in web_metrics
        assert 'bridge_operations_total{outcome="ok",subcommand="send"} 2.0' in worker_metrics
    finally:
        await stop_all(web, worker)
    bodies = sorted(dict(create.form)["Body"] for create in far_ends.twilio.creates())
    assert bodies == ["from the command", "from the form"]
    text = " ".join(only_text([card]) for card in far_ends.cards())
    assert "from the command" in text and "from the form" in text and "Delayed" not in text
    assert [row["card_posted"] for row in outbox_rows(bot_db)] == [1, 1]
    assert "Traceback" not in web.log() + worker.log()


async def test_what_was_acked_while_no_worker_ran_is_sent_once_it_starts(
    far_ends: FarEnds, bot_db: Path
) -> None:
    """With no worker the acked command waits in the journal, unsent; the worker sends it once."""
    web = await start_bot(far_ends, bot_db, log_name="web", WORKER_PROCESS="1")
    try:
        ack = await far_ends.slack.slash_command(f"send {TO} waiting for a worker")
        assert ack.status == 200 and "Working on it" in ack.body
        [entry] = table_rows(bot_db, "journal")
        assert entry["done_at"] is None
        worker = await start_worker(far_ends, bot_db)
        try:
            await until(lambda: bool(far_ends.cards()) and journal_done(bot_db), what="the card")
        finally:
            await stop_all(worker)
    finally:
        await stop_all(web)
    [create] = far_ends.twilio.creates()
    assert dict(create.form)["Body"] == "waiting for a worker"
    # It was accepted before the worker started: its card says it was delayed.
    assert "Delayed by a bot restart" in only_text(far_ends.cards())
    assert len(far_ends.cards()) == 1


async def test_a_worker_killed_mid_create_is_settled_by_the_next_one(far_ends: FarEnds, bot_db: Path) -> None:
    """kill -9 of the worker while Twilio holds its create: the next one posts one card, re-sends nothing."""
    web = await start_bot(far_ends, bot_db, log_name="web", WORKER_PROCESS="1")
    worker = await start_worker(far_ends, bot_db, log_name="first")
    try:
        await hold_a_create(far_ends, f"send {TO} held at Twilio")
        worker.kill()
        assert await worker.wait() == -9
        far_ends.twilio.release_held()
        worker = await start_worker(far_ends, bot_db, log_name="second")
        await until(lambda: bool(far_ends.cards()) and journal_done(bot_db), what="the recovered card")
        await until(lambda: all(row["card_posted"] for row in outbox_rows(bot_db)), what="the card noted")
    finally:
        await stop_all(web, worker)
    assert len(far_ends.twilio.creates()) == 1
    assert len(far_ends.cards()) == 1


async def test_two_workers_on_one_sqlite_file_send_each_command_once(far_ends: FarEnds, bot_db: Path) -> None:
    """Two workers share the accepted commands through the file locks: one create and one card each."""
    web = await start_bot(far_ends, bot_db, log_name="web", WORKER_PROCESS="1")
    workers = [await start_worker(far_ends, bot_db, log_name=f"worker{n}") for n in (1, 2)]
    try:
        acks = await asyncio.gather(
            *(far_ends.slack.slash_command(f"send {TO} number {n}") for n in range(30))
        )
        assert all(ack.status == 200 and "Working on it" in ack.body for ack in acks)
        await until(lambda: len(far_ends.cards()) >= 30 and journal_done(bot_db), what="30 cards")
    finally:
        await stop_all(web, *workers)
    bodies = sorted(dict(create.form)["Body"] for create in far_ends.twilio.creates())
    assert bodies == sorted(f"number {n}" for n in range(30))
    assert len(far_ends.cards()) == 30


def test_worker_process_is_a_flag_refused_by_name_when_garbled() -> None:
    """WORKER_PROCESS=1 turns hand-off on; 0 or unset leaves serve running sends; other text is refused."""
    assert load_settings({"WORKER_PROCESS": "1"}, dotenv=None).worker_process is True
    assert load_settings({}, dotenv=None).worker_process is False
    with pytest.raises(SettingsError, match=r"WORKER_PROCESS must be 1 \(on\) or 0 \(off\), not 'yes'"):
        load_settings({"WORKER_PROCESS": "yes"}, dotenv=None)


@pytest.mark.postgres
async def test_on_postgresql_the_worker_runs_what_the_web_process_acknowledged(
    far_ends: FarEnds, postgres_schema: str, tmp_path: Path
) -> None:
    """The same hand-off through PostgreSQL: each acked command is sent once, with one card."""
    await store_account(far_ends, postgres_schema)
    web = await start_bot(
        far_ends, tmp_path / "unused.db", log_name="web", WORKER_PROCESS="1", DATABASE_URL=postgres_schema
    )
    worker = await start_worker(far_ends, tmp_path / "unused.db", DATABASE_URL=postgres_schema)
    try:
        acks = await asyncio.gather(
            *(far_ends.slack.slash_command(f"send {TO} pg number {n}") for n in range(10))
        )
        assert all(ack.status == 200 and "Working on it" in ack.body for ack in acks)
        ten_ok = 'bridge_operations_total{outcome="ok",subcommand="send"} 10.0'

        async def all_run() -> bool:  # counted once each card is out, so wait for the count itself
            return ten_ok in await metrics_of(worker)

        await until(all_run, what="10 operations run by the worker")
    finally:
        await stop_all(web, worker)
    bodies = sorted(dict(create.form)["Body"] for create in far_ends.twilio.creates())
    assert bodies == sorted(f"pg number {n}" for n in range(10))
    assert len(far_ends.cards()) == 10

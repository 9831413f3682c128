"""The intake service: requests read back as they were accepted, one lease per key, recovery by age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage_fixtures import claim_send

from bot.core.commands import ScheduleCommand, SendCommand
from bot.core.phone import PhoneNumber
from bot.inflight import InFlight
from bot.intake import Intake, Recovered, command_of, fields_of
from bot.operations import Context
from storage.db import Database
from storage.journal import Journal, NewJournalEntry
from storage.outbox import Outbox

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CTX = Context(team_id="T1", user_id="U1", channel_id="C1", response_url="https://hooks.example/r")
SEND = SendCommand(
    to=PhoneNumber("+15551234567", whatsapp=True),
    body="héllo <there>",
    from_=PhoneNumber("+15557654321", whatsapp=True),
    account="main",
)
SCHEDULE = ScheduleCommand(
    to=PhoneNumber("+15551234567"), send_at=NOW + timedelta(hours=2), body="later", service="MG" + "a" * 32
)


async def _accepted(journal: Journal, key: str, *, minutes_ago: int) -> None:
    """U1's SEND, accepted `minutes_ago` before NOW, written to the journal."""
    await journal.record(
        NewJournalEntry(
            key=key,
            team_id="T1",
            user_id="U1",
            subcommand="send",
            fields=fields_of(SEND),
            accepted_at=NOW - timedelta(minutes=minutes_ago),
        )
    )


def _intake(db: Database, inflight: InFlight, *, now: datetime = NOW) -> Intake:
    return Intake(journal=Journal(db), outbox=Outbox(db), inflight=inflight, clock=lambda: now)


def test_requests_read_back_exactly_as_they_were_accepted() -> None:
    """A send and a schedule survive the trip through plain journal fields unchanged."""
    for cmd in (SEND, SCHEDULE, SendCommand(to=PhoneNumber("+15551234567"), body="no extras")):
        fields = {k: v for k, v in fields_of(cmd).items() if v is not None}
        assert command_of(cmd.subcommand, fields) == cmd


async def test_a_key_being_worked_on_is_not_accepted_twice(db: Database) -> None:
    """While the first delivery holds the key, a second gets None; once finished it is done in the journal."""
    intake = _intake(db, InFlight(None))
    ticket = await intake.accept(CTX, SEND, key="view:T1:V1")
    assert ticket is not None
    assert await intake.accept(CTX, SEND, key="view:T1:V1") is None
    await intake.finish(ticket)
    entry = await intake.journal.get("view:T1:V1")
    assert entry is not None and entry.done_at is not None


async def test_recovery_runs_young_tells_old_and_skips_what_is_held(db: Database, tmp_path: Path) -> None:
    """Young entries run, old ones are told not sent, claimed ones and live ones are left alone."""
    journal = Journal(db)
    for key, age in (("young", 1), ("old", 30), ("claimed", 1), ("held", 1)):
        await _accepted(journal, key, minutes_ago=age)
    await claim_send(Outbox(db), "claimed")
    live = InFlight(tmp_path / "locks")  # another process's leases on the same keys
    held = live.try_acquire("held")
    assert held is not None
    ran: list[Recovered] = []
    told: list[Recovered] = []

    async def run_now(item: Recovered) -> None:
        ran.append(item)
        await intake.finish(item.ticket)

    async def too_old(item: Recovered) -> bool:
        told.append(item)
        return True

    mine = InFlight(tmp_path / "locks")
    intake = _intake(db, mine)
    try:
        assert await intake.recover(run_now=run_now, too_old=too_old) == (1, 1)
    finally:
        mine.close()
    assert [r.ticket.key for r in ran] == ["young"] and ran[0].cmd == SEND
    assert [r.ticket.key for r in told] == ["old"]
    assert [e.key for e in await journal.open_entries()] == ["held"]
    live.close()


async def test_a_handing_off_intake_writes_down_and_holds_nothing(db: Database, tmp_path: Path) -> None:
    """With hand_off (WORKER_PROCESS) accept writes the entry, returns None and leaves the key free."""
    locks = InFlight(tmp_path / "locks")
    web = Intake(journal=Journal(db), outbox=Outbox(db), inflight=locks, clock=lambda: NOW, hand_off=True)
    assert await web.accept(CTX, SEND, key="cmd:T1:1") is None
    assert await web.accept(CTX, SEND, key="cmd:T1:1") is None  # a redelivery: still one entry
    assert [e.key for e in await web.journal.open_entries()] == ["cmd:T1:1"]
    worker = InFlight(tmp_path / "locks")
    lease = worker.try_acquire("cmd:T1:1")
    assert lease is not None  # nobody holds it: a worker can take it
    lease.release()
    worker.close()
    locks.close()


async def test_a_worker_poll_starts_each_entry_once_and_picks_up_new_ones(db: Database) -> None:
    """poll() runs what is new since the last round; what it started (or failed to tell) is not retried."""
    intake = _intake(db, InFlight(None))
    started: list[str] = []
    told: list[str] = []

    async def run_now(item: Recovered) -> None:
        started.append(item.ticket.key)  # left running: not finished, lease held

    async def too_old(item: Recovered) -> bool:
        told.append(item.ticket.key)
        item.ticket.lease.release()
        return False  # Slack could not be reached

    await _accepted(intake.journal, "a", minutes_ago=1)
    await _accepted(intake.journal, "old", minutes_ago=30)
    assert await intake.poll(run_now=run_now, too_old=too_old) == (1, 0)
    await _accepted(intake.journal, "b", minutes_ago=0)
    assert await intake.poll(run_now=run_now, too_old=too_old) == (1, 0)
    assert await intake.poll(run_now=run_now, too_old=too_old) == (0, 0)
    assert started == ["a", "b"] and told == ["old"]


async def test_a_recovered_request_keeps_who_asked_and_where(db: Database) -> None:
    """Team, enterprise, user, channel (none here) and reply link come back from the journal unchanged."""
    ctx = Context(
        team_id="T1", user_id="U1", channel_id=None, enterprise_id="E1", response_url="https://r.example"
    )
    ticket = await _intake(db, InFlight(None)).accept(ctx, SEND, key="cmd:T1:1")
    assert ticket is not None
    ticket.lease.release()  # the process that accepted it stopped
    ran: list[Recovered] = []

    async def run_now(item: Recovered) -> None:
        ran.append(item)

    async def too_old(item: Recovered) -> bool:
        return False

    assert await _intake(db, InFlight(None)).recover(run_now=run_now, too_old=too_old) == (1, 0)
    assert [r.ctx for r in ran] == [ctx]

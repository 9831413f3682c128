"""Accepted means written down: a create is recorded before the user hears "accepted", and a crash
cannot lose it. Nothing here knows Slack.

`accept` takes the lease on the action's key (`bot.inflight`) and writes the request to the journal;
the caller acknowledges only after it returns. The lease is held until the work is done and `finish`
has marked the entry, so a replica starting meanwhile never re-runs it. At start-up `recover` hands each
entry that never reached the outbox back to the door: young ones to run now, old ones to be told they
were not sent. An entry whose create reached the outbox is left to the outbox's own recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.core.commands import ScheduleCommand, SendCommand
from bot.core.errors import SentenceError
from bot.core.phone import PhoneNumber
from bot.inflight import InFlight, Lease
from bot.operations import Context
from storage.db import DatabaseUnavailable
from storage.journal import FieldValue, Journal, JournalEntry, NewJournalEntry
from storage.outbox import Outbox

__all__ = ["Create", "Intake", "NotAccepted", "Recovered", "Ticket", "command_of", "fields_of"]

log = logging.getLogger(__name__)

Create = SendCommand | ScheduleCommand
DEFAULT_MAX_AGE = timedelta(minutes=10)
# How long a done entry is kept: long past any redelivery of its request (Slack's come within minutes;
# the outbox, kept for good, is what makes a create happen at most once).
KEEP_DONE = timedelta(days=7)


class NotAccepted(SentenceError):
    """The request could not be written down, so it was not accepted; `message` tells the user."""


@dataclass(frozen=True)
class Ticket:
    """An accepted request being worked on: its key and the lease that keeps other processes off it."""

    key: str
    lease: Lease


@dataclass(frozen=True)
class Recovered:
    """An accepted request that a stopped process never got to Twilio."""

    ctx: Context
    cmd: Create
    ticket: Ticket
    accepted_at: datetime


def fields_of(cmd: Create) -> dict[str, str | None]:
    """The request as plain fields for the journal (what the user asked for, nothing else)."""
    if isinstance(cmd, SendCommand):
        return {
            "to": str(cmd.to),
            "body": cmd.body,
            "from": str(cmd.from_) if cmd.from_ else None,
            "account": cmd.account,
        }
    return {
        "to": str(cmd.to),
        "body": cmd.body,
        "send_at": cmd.send_at.isoformat(),
        "service": cmd.service,
        "account": cmd.account,
    }


def command_of(subcommand: str, fields: Mapping[str, FieldValue]) -> Create:
    """The request `fields_of` wrote down, read back (it was checked when it was accepted)."""

    def text(name: str) -> str | None:
        value = fields.get(name)
        return value if isinstance(value, str) else None

    to = PhoneNumber.from_str(text("to") or "")
    if subcommand == "send":
        sender = text("from")
        return SendCommand(
            to=to,
            body=text("body") or "",
            from_=PhoneNumber.from_str(sender) if sender else None,
            account=text("account"),
        )
    if subcommand == "schedule":
        return ScheduleCommand(
            to=to,
            send_at=datetime.fromisoformat(text("send_at") or ""),
            body=text("body") or "",
            service=text("service"),
            account=text("account"),
        )
    raise ValueError(f"the journal holds no {subcommand!r} requests")


@dataclass(frozen=True, kw_only=True, eq=False)  # eq=False: one service, told apart by identity
class Intake:
    """Writes accepted creates down before the ack and hands back the ones a crash interrupted."""

    journal: Journal
    outbox: Outbox
    inflight: InFlight
    clock: Callable[[], datetime]
    max_age: timedelta = DEFAULT_MAX_AGE
    # WORKER_PROCESS: this process only writes creates down; worker processes run them (`poll`).
    hand_off: bool = False
    # A worker's: the keys it has started (until their entries are done), so a poll skips them.
    _started: set[str] = field(default_factory=set, init=False)

    async def accept(self, ctx: Context, cmd: Create, *, key: str) -> Ticket | None:
        """Write the request down; the caller may acknowledge once this returns.

        None when someone else runs it: another delivery of the same action is already being worked on,
        or (`hand_off`) a worker process will (acknowledge, do nothing). Raises NotAccepted, with the
        user's sentence, when the write failed.
        """
        lease = None
        if not self.hand_off:
            lease = self.inflight.try_acquire(key)
            if lease is None:
                return None
        try:
            await self.journal.record(
                NewJournalEntry(
                    key=key,
                    **ctx.who(),
                    channel_id=ctx.channel_id,
                    response_url=ctx.response_url,
                    subcommand=cmd.subcommand,
                    fields=fields_of(cmd),
                    accepted_at=self.clock(),
                )
            )
        except BaseException as err:
            if lease is not None:
                lease.release()
            if not isinstance(err, DatabaseUnavailable):
                raise
            log.warning("could not write an accepted %s down: %s", cmd.subcommand, err.detail or err)
            raise NotAccepted(str(err)) from None
        return None if lease is None else Ticket(key, lease)

    async def prune(self) -> int:
        """Forget the entries done more than KEEP_DONE ago; returns how many went."""
        return await self.journal.prune(done_before=self.clock() - KEEP_DONE)

    async def finish(self, ticket: Ticket) -> None:
        """The request's outcome is shown (or its create is in the outbox): mark it done, then let go."""
        try:
            await self.journal.finish(ticket.key)
        except DatabaseUnavailable as err:
            # Left open: the next start finds its outbox row, or runs it again if it never got that far.
            log.warning("could not mark an accepted request done: %s", err.detail or err)
        finally:
            ticket.lease.release()

    async def poll(
        self,
        *,
        run_now: Callable[[Recovered], Awaitable[None]],
        too_old: Callable[[Recovered], Awaitable[bool]],
    ) -> tuple[int, int]:
        """A worker process's round: `recover` what was accepted since the last round, and what another
        process let go of. Each entry is started once per worker: one whose run failed, or whose user
        could not be told it was too old, waits for the next start, as in `recover`. Returns (run now,
        told not sent).
        """
        open_keys = await self.journal.open_keys()
        self._started.intersection_update(open_keys)  # forget the finished ones
        fresh = [key for key in open_keys if key not in self._started]
        if not fresh:
            return 0, 0

        async def start(item: Recovered) -> None:
            self._started.add(item.ticket.key)
            await run_now(item)

        async def tell(item: Recovered) -> bool:
            # Once per worker, as once per start: a user Slack could not be told is not retried each round.
            self._started.add(item.ticket.key)
            return await too_old(item)

        return await self.recover(run_now=start, too_old=tell, keys=fresh)

    async def recover(
        self,
        *,
        run_now: Callable[[Recovered], Awaitable[None]],
        too_old: Callable[[Recovered], Awaitable[bool]],
        accepted_before: datetime | None = None,
        keys: Sequence[str] | None = None,
    ) -> tuple[int, int]:
        """Hand each accepted request that never reached the outbox back to the door, oldest first.

        Younger than `max_age`: `run_now` (which must `finish` it when done). Older: `too_old` tells
        the user it was not sent (False: could not, left for the next start). Entries another live
        process holds are left to it; with `accepted_before`, only entries accepted before then (a
        replica's lease round: what a replica that died accepted); with `keys`, only those (a worker's
        poll: what was accepted since). Returns (run now, told not sent).
        """
        ran = told = 0
        if keys is None:
            entries = await self.journal.open_entries(accepted_before=accepted_before)
        else:
            entries = await self.journal.open_entries_for(keys)
        for entry in entries:
            lease = self.inflight.try_acquire(entry.key)
            if lease is None:
                continue
            ticket = Ticket(entry.key, lease)
            if await self.outbox.get(entry.key) is not None:
                await self.finish(ticket)  # it reached the outbox: the outbox's recovery owns it
                continue
            item = _recovered(entry, ticket)
            if item is None:
                await self.finish(ticket)
                continue
            if self.clock() - entry.accepted_at <= self.max_age:
                await run_now(item)
                ran += 1
            elif await too_old(item):
                await self.finish(ticket)
                told += 1
            else:
                lease.release()
        if (ran or told) and keys is None:
            log.info("accepted before the restart: %d run now, %d too old and not sent", ran, told)
        return ran, told


def _recovered(entry: JournalEntry, ticket: Ticket) -> Recovered | None:
    try:
        cmd = command_of(entry.subcommand, entry.fields)
    except ValueError as err:
        log.error("journal entry %s cannot be read back (%s); dropped", entry.id, err)
        return None
    ctx = Context(
        team_id=entry.team_id,
        user_id=entry.user_id,
        channel_id=entry.channel_id,
        enterprise_id=entry.enterprise_id,
        response_url=entry.response_url,
    )
    return Recovered(ctx, cmd, ticket, entry.accepted_at)

"""Which creates this replica is working on, when replicas share one PostgreSQL database.

A file lock (`bot.inflight`) cannot span machines, so on PostgreSQL ownership lives in the outbox row
itself: each claim names this process (`owner`) and lasts `lease_seconds`. While a create (or the
settling of a taken-over row) runs, its key is *held* here, and the heartbeat renews the lease of every
held key. A replica that dies stops renewing; once its leases run out, any replica's reconciler takes the
rows over (`Outbox.take_stale`, FOR UPDATE SKIP LOCKED) and settles them the way start-up recovery does.

Bookkeeping that could not be written because the database stopped answering after Twilio already
accepted a create (the outcome, "card posted") is kept here and written by the heartbeat once the
database answers again; its key stays held meanwhile, so nobody takes the row over and posts a second
card. Only an outage longer than the lease can still make one.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

from storage.db import DatabaseUnavailable
from storage.outbox import DEFAULT_LEASE_SECONDS, Outbox

__all__ = ["Leases", "new_owner"]

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[None]]


def new_owner() -> str:
    """This process's name in the outbox: host, pid and a random tail (pids repeat across restarts)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    """This replica's owner id, the keys it holds, and the writes waiting for the database."""

    def __init__(
        self, outbox: Outbox, *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.outbox = outbox
        self.owner = owner or new_owner()
        self.lease_seconds = lease_seconds
        # key -> [holders, when its lease was last set (monotonic)]
        self._held: dict[str, list[float]] = {}
        self._unsaved: dict[str, list[Write]] = {}

    def hold(self, key: str) -> Callable[[], None]:
        """Keep renewing `key`'s lease (just set by a claim or a take-over) until the returned function
        (or `let_go(key)`) is called; the function lets go once, however often it is called."""
        entry = self._held.setdefault(key, [0, time.monotonic()])
        entry[0] += 1
        done = False

        def release() -> None:
            nonlocal done
            if not done:
                done = True
                self.let_go(key)

        return release

    def let_go(self, key: str) -> None:
        """Stop renewing `key` (unless writes for it are still waiting for the database)."""
        entry = self._held.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] <= 0:
            del self._held[key]

    def held(self) -> set[str]:
        """Keys whose leases the heartbeat renews."""
        return set(self._held) | set(self._unsaved)

    async def write(self, key: str, write: Write) -> None:
        """Run `write` now; when the database does not answer, keep it for the heartbeat to retry."""
        if key in self._unsaved:  # keep the order of one key's writes
            self._unsaved[key].append(write)
            return
        try:
            await write()
        except DatabaseUnavailable as err:
            log.warning("database not answering; the outcome is kept and written later (%s)", err.detail)
            self._unsaved[key] = [write]

    @property
    def unsaved(self) -> int:
        """How many writes are waiting for the database."""
        return sum(len(writes) for writes in self._unsaved.values())

    async def flush(self) -> int:
        """Write what waited for the database, oldest first per key; returns how many were written.

        Stops at the first write the database still refuses (DatabaseUnavailable propagates).
        """
        done = 0
        for key in list(self._unsaved):
            writes = self._unsaved[key]
            while writes:
                await writes[0]()
                writes.pop(0)
                done += 1
            del self._unsaved[key]
        return done

    async def renew(self, *, all_held: bool = False) -> int:
        """Extend the lease of every held key that is a third spent (`all_held`: every one); returns how many.

        Most creates end within a second, long before a third of their lease is spent, so they cost no
        renewal at all. A key that is no longer ours (taken over after a long outage, or its card
        posted meanwhile) is logged and left alone: the work on it goes on, and at worst its card is
        posted twice.
        """
        renewed = 0
        now = time.monotonic()
        for key in self.held():
            entry = self._held.get(key)
            if not all_held and entry is not None and now - entry[1] < self.lease_seconds / 3:
                continue
            if await self.outbox.renew(key, owner=self.owner, lease_seconds=self.lease_seconds):
                renewed += 1
                if entry is not None:
                    entry[1] = now
            elif entry is not None:
                row = await self.outbox.get(key)
                if row is not None and not row.card_posted and row.owner != self.owner:
                    log.warning(
                        "outbox row %s was taken over by %s while this replica worked on it",
                        row.id,
                        row.owner,
                    )
        return renewed

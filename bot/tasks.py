"""Background work after Slack's ack: tracked tasks that shutdown can wait for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from typing import Any

log = logging.getLogger(__name__)


class ShuttingDown(Exception):
    """New work was offered after shutdown began."""


# How long background work may wait for Slack requests to be answered before it runs anyway: the most a
# card is delayed under load, and what keeps a steady stream of requests from starving the work.
MAX_DEFER = 1.0


class TaskTracker:
    """Keeps a reference to every background task (asyncio only keeps weak ones) and drains them on stop.

    It also lets Slack's requests go first. Each ack has a 3-second deadline and background work has
    none, yet on one event loop a burst of sends would otherwise interleave their Twilio calls, card
    building and posting with the acks still waiting to be sent, and every ack would pay for it. So
    background work waits (`after_foreground`) while requests are being answered, for at most
    `max_defer` seconds, so it never starves. The price is bunching: work held back runs together once
    the requests are answered, which shows as event-loop lag (queueing, not blocking) under heavy load.
    """

    def __init__(self, *, max_defer: float = MAX_DEFER) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._max_defer = max_defer
        self._answering = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.contextmanager
    def foreground(self) -> Iterator[None]:
        """Mark a Slack request as being answered while the block runs."""
        self._answering += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._answering -= 1
            if not self._answering:
                self._quiet.set()

    async def after_foreground(self) -> None:
        """Return once no Slack request is being answered, or after `max_defer` seconds at most."""
        if not self._quiet.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self._max_defer)

    @property
    def closing(self) -> bool:
        """True once shutdown began: listeners then refuse new work with a sentence."""
        return self._closing

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run `coro` in the background; its exception is logged, never lost."""
        if self._closing:
            coro.close()
            raise ShuttingDown("The bot is restarting; nothing was done. Try again in a minute.")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until no background task is running (tasks spawned meanwhile are waited for too)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def close(self) -> None:
        """Stop taking new work; tasks already running go on."""
        self._closing = True

    async def drain(self, seconds: float) -> int:
        """Wait up to `seconds` for running tasks, then cancel the rest; returns how many were cancelled."""
        self.close()
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
            log.warning("shutdown cancelled %d unfinished background task(s)", len(pending))
        return len(pending)

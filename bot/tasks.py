"""Background work after Slack's ack: tracked tasks that shutdown can wait for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class ShuttingDown(Exception):
    """New work was offered after shutdown began."""


class TaskTracker:
    """Keeps a reference to every background task (asyncio only keeps weak ones) and drains them on stop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

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

"""The one way tests wait for background work: `until(...)`, bounded, naming what it waited for.

A test that reads the simulators' records right after an HTTP answer races the bot (Bolt runs the rest
of a listener after its ack), so every wait is on the event itself. `until` takes a condition (polled)
or an awaitable (a simulator's own "wait for" coroutine); `until_sync` is the same for plain threads.
On timeout both fail with "timed out after N s waiting for <what>".
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

# Generous: under two busy cores a bot that needs 50 ms may need 2 s; only a real hang takes this long.
TIMEOUT = 10.0
POLL = 0.01

Condition = Callable[[], Any]


def _timed_out(what: str, timeout: float) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}")


async def until(condition: Condition | Awaitable[Any], *, timeout: float = TIMEOUT, what: str) -> Any:
    """Return once `condition()` is truthy (sync or async), or once the awaitable is done: its value.

    Fails with an AssertionError naming `what` after `timeout` seconds.
    """
    if inspect.isawaitable(condition):
        try:
            return await asyncio.wait_for(condition, timeout)
        except TimeoutError:
            raise _timed_out(what, timeout) from None
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout)
        await asyncio.sleep(POLL)


def until_sync(condition: Condition, *, timeout: float = TIMEOUT, what: str) -> Any:
    """`until` for code outside an event loop (a thread, a subprocess): polls `condition()`."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout)
        pause.wait(POLL)

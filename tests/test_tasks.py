"""Background tasks: tracked, drained on shutdown, and held back while Slack requests are answered."""

from __future__ import annotations

import asyncio

import pytest
from waiting import until

from bot.tasks import ShuttingDown, TaskTracker


async def test_background_work_waits_for_requests_being_answered() -> None:
    """Work started during a request runs only once the request is answered."""
    tracker = TaskTracker(max_defer=60.0)
    order: list[str] = []

    async def work() -> None:
        await tracker.after_foreground()
        order.append("work")

    with tracker.foreground():
        tracker.spawn(work())
        for _ in range(5):  # let the task run as far as it can
            await asyncio.sleep(0)
        order.append("answered")
    await tracker.idle()
    assert order == ["answered", "work"]


async def test_background_work_is_never_starved() -> None:
    """A request that never ends holds work back for max_defer at most."""
    tracker = TaskTracker(max_defer=0.01)
    done = asyncio.Event()

    async def work() -> None:
        await tracker.after_foreground()
        done.set()

    with tracker.foreground():
        tracker.spawn(work())
        await until(done.wait(), what="the held-back work to run anyway")
    assert done.is_set()


async def test_no_wait_when_no_request_is_open() -> None:
    """With nothing being answered, background work starts at once."""
    tracker = TaskTracker(max_defer=60.0)
    await until(tracker.after_foreground(), what="after_foreground to return")


async def test_shutdown_refuses_new_work_and_drains_running_work() -> None:
    """After drain begins, spawn refuses; work already running finishes."""
    tracker = TaskTracker()
    release = asyncio.Event()
    finished: list[bool] = []

    async def work() -> None:
        await release.wait()
        finished.append(True)

    tracker.spawn(work())
    drain = asyncio.ensure_future(tracker.drain(5.0))
    await asyncio.sleep(0)
    coro = work()
    with pytest.raises(ShuttingDown):
        tracker.spawn(coro)
    release.set()
    assert await drain == 0
    assert finished == [True]

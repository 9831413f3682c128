"""The tests' one bounded wait: it returns as soon as the event happens and names what never did."""

from __future__ import annotations

import asyncio

import pytest
from waiting import until, until_sync


async def test_until_returns_the_condition_once_it_holds() -> None:
    """A condition (sync or async) is polled until truthy; its value comes back."""
    seen: list[int] = []

    async def third_time() -> int | None:
        seen.append(1)
        return len(seen) if len(seen) >= 3 else None

    assert await until(third_time, what="the third look") == 3
    assert await until(lambda: "now", what="at once") == "now"


async def test_until_awaits_an_awaitable_and_returns_its_result() -> None:
    """An awaitable (a simulator's wait_held, say) is awaited within the bound."""
    event = asyncio.Event()
    asyncio.get_running_loop().call_soon(event.set)
    assert await until(event.wait(), what="the event") is True


async def test_until_names_what_it_waited_for_on_timeout() -> None:
    """A wait that runs out fails with the bound and the thing it waited for, both ways of calling it."""
    with pytest.raises(AssertionError, match=r"timed out after 0\.05 s waiting for the card"):
        await until(lambda: False, timeout=0.05, what="the card")
    with pytest.raises(AssertionError, match="waiting for Twilio to hold the create"):
        await until(asyncio.Event().wait(), timeout=0.05, what="Twilio to hold the create")


def test_until_sync_polls_outside_an_event_loop() -> None:
    """The thread version returns the condition's value, or fails naming what it waited for."""
    values = iter([0, "", "there"])
    assert until_sync(lambda: next(values), what="a value") == "there"
    with pytest.raises(AssertionError, match="waiting for the page"):
        until_sync(lambda: None, timeout=0.05, what="the page")

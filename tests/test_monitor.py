"""The opt-in event-loop lag monitor and its setting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from harness import Stack

from bot.monitor import LoopMonitor
from bot.settings import SettingsError, load_settings


def test_lag_figures_cover_the_samples_asked_for() -> None:
    """p50/p99/max in ms over every sample, or only those after a given sample number."""
    monitor = LoopMonitor(capacity=1000)
    for ms in range(1, 101):
        monitor.record(ms / 1000)
    figures = monitor.stats()
    assert (figures["samples"], figures["window"]) == (100, 100)
    assert (figures["p50_ms"], figures["p99_ms"], figures["max_ms"]) == (50.0, 99.0, 100.0)
    later = monitor.stats(after=90)
    assert (later["window"], later["p50_ms"], later["max_ms"]) == (10, 95.0, 100.0)
    monitor.record(-0.001)  # a timer that fired a hair early counts as on time
    assert monitor.stats(after=100)["max_ms"] == 0.0


def test_the_ring_keeps_only_the_latest_samples() -> None:
    """Memory stays fixed: beyond its capacity the monitor forgets the oldest samples."""
    monitor = LoopMonitor(capacity=10)
    for _ in range(10):
        monitor.record(1.0)
    for _ in range(10):
        monitor.record(0.002)
    figures = monitor.stats()
    assert (figures["samples"], figures["window"], figures["max_ms"]) == (20, 10, 2.0)


def test_the_monitor_is_off_unless_asked_for() -> None:
    """BOT_LOOP_MONITOR=1 turns it on; anything but 0/1/true/false is refused by name."""
    assert load_settings({}, dotenv=None).loop_monitor is False
    assert load_settings({"BOT_LOOP_MONITOR": "1"}, dotenv=None).loop_monitor is True
    with pytest.raises(SettingsError, match="BOT_LOOP_MONITOR"):
        load_settings({"BOT_LOOP_MONITOR": "yes please"}, dotenv=None)


async def test_healthz_shows_the_lag_only_when_the_monitor_runs(
    make_stack: Callable[..., Awaitable[Stack]],
) -> None:
    """`/healthz?lag=1` carries the figures with BOT_LOOP_MONITOR=1, and null without it."""
    watched, plain = await make_stack(loop_monitor=True), await make_stack()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{watched.bot_url}/healthz?lag=1&after=0") as resp:
            lag = (await resp.json())["loop_lag"]
        async with session.get(f"{plain.bot_url}/healthz?lag=1") as resp:
            assert (await resp.json())["loop_lag"] is None
        async with session.get(f"{plain.bot_url}/healthz") as resp:
            assert "loop_lag" not in await resp.json()
    assert set(lag) == {"interval_ms", "samples", "window", "p50_ms", "p99_ms", "max_ms"}

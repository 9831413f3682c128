"""An opt-in event-loop lag monitor: how late the loop wakes a 10 ms sleep (BOT_LOOP_MONITOR=1).

Anything that holds the event loop (blocking I/O, a long computation) delays every request the process is
serving; sleep drift measures exactly that, from inside the process. The server starts one when the
setting is on and `GET /healthz?lag=1` adds its figures. Samples live in a fixed ring (about 11 minutes
at 10 ms), so memory stays constant however long the bot runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from array import array


class LagProbe:
    """Sleeps `interval` seconds over and over and hands `record` how late each wake-up was."""

    name = "loop lag probe"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def record(self, lag: float) -> None:
        """Keep one sample (seconds late)."""
        raise NotImplementedError

    def start(self) -> None:
        """Start sampling on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop sampling."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            self.record(loop.time() - started - interval)


class LoopMonitor(LagProbe):
    """Samples the loop's lag every `interval` seconds, keeping the latest `capacity` samples."""

    name = "loop monitor"

    def __init__(self, interval: float = 0.01, capacity: int = 65_536) -> None:
        super().__init__(interval)
        self._ring = array("d", bytes(8 * capacity))
        self._count = 0

    @property
    def samples(self) -> int:
        """How many samples were taken since start (also those the ring has since dropped)."""
        return self._count

    def record(self, lag: float) -> None:
        """Keep one sample (seconds late), dropping the oldest when the ring is full."""
        self._ring[self._count % len(self._ring)] = max(lag, 0.0)
        self._count += 1

    def stats(self, after: int = 0) -> dict[str, float | int]:
        """p50, p99 and max lag in ms over the samples numbered `after` and later (still in the ring).

        A caller measuring one period reads `samples` before it and passes that number as `after`.
        """
        capacity = len(self._ring)
        first = max(after, self._count - capacity, 0)
        window = sorted(self._ring[i % capacity] for i in range(first, self._count))

        def ms(value: float) -> float:
            return round(value * 1000, 3)

        def rank(p: float) -> float:
            return window[max(math.ceil(p / 100 * len(window)) - 1, 0)] if window else 0.0

        return {
            "interval_ms": ms(self.interval),
            "samples": self._count,
            "window": len(window),
            "p50_ms": ms(rank(50)),
            "p99_ms": ms(rank(99)),
            "max_ms": ms(window[-1] if window else 0.0),
        }

"""The simulator's clock: statuses are computed from it on read, so tests move time instead of waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimClock:
    """The simulator's notion of now: fixed until advanced, or following real time plus an offset."""

    def __init__(self, start: datetime | None = None, *, follow_real_time: bool = False) -> None:
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0)
        elif start.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._follow = follow_real_time
        self._started = time.monotonic()
        self._offset = timedelta()
        self._listeners: list[Callable[[], None]] = []

    @property
    def follows_real_time(self) -> bool:
        """Whether now moves with real time (else only `advance` moves it)."""
        return self._follow

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every `advance` (the simulator wakes its callback schedule with it)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        """Stop calling `listener` (a no-op when it was not subscribed)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def now(self) -> datetime:
        """The current simulated time (aware, UTC)."""
        moment = self._start + self._offset
        if self._follow:
            moment += timedelta(seconds=time.monotonic() - self._started)
        return moment

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by `delta` (never backwards) and return the new now."""
        if delta < timedelta():
            raise ValueError("SimClock cannot go backwards")
        self._offset += delta
        for listener in list(self._listeners):
            listener()
        return self.now()

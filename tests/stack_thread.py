"""One bot stack on its own event loop thread, so a synchronous hypothesis test can drive it per example.

Hypothesis runs each example as a plain function call; starting a stack per example would be slow, and an
async fixture cannot be shared with `@given`. So the stack lives on a loop in a background thread for
the whole test function, and each example hands it a coroutine and waits for the result.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from harness import Stack, start_stack, stop_stack

T = TypeVar("T")
EXAMPLE_SECONDS = 30.0


class StackThread:
    """`with StackThread(db_path) as running: running.run(lambda stack: ...)`."""

    def __init__(self, db_path: Path, **settings: Any) -> None:
        self._db_path = db_path
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stack loop", daemon=True)
        self._stack: Stack | None = None

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(EXAMPLE_SECONDS)

    def __enter__(self) -> StackThread:
        self._thread.start()
        self._stack = self._call(start_stack(self._db_path, **self._settings))
        return self

    def run(self, scenario: Callable[[Stack], Awaitable[T]]) -> T:
        """Run `scenario(stack)` on the stack's loop and return its result (exceptions propagate)."""
        assert self._stack is not None
        stack = self._stack

        async def call() -> T:
            return await scenario(stack)

        return self._call(call())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._stack is not None:
                self._call(stop_stack(self._stack))
            self._call(self._loop.shutdown_asyncgens())
            self._call(self._loop.shutdown_default_executor())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

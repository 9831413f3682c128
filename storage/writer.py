"""The one SQLite writer thread: jobs run one at a time in the order given, urgent ones first.

An urgent job is one a Slack acknowledgement waits for (the journal's group commit). Under a burst the
background work of earlier commands queues hundreds of statements; an ack behind them would wait for
all of them. Jumping the queue is safe because the caller submits urgent work only while it holds the
database's order lock, when no transaction is open, and every queued job is complete on its own.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["Writer"]

T = TypeVar("T")


class Writer:
    """A single worker thread with two queues; `submit` returns a concurrent Future."""

    def __init__(self, name: str = "sqlite-writer") -> None:
        self._ready = threading.Condition()
        self._urgent: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._normal: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._closed = False
        # A daemon: a database never closed must not keep the interpreter alive (commits are atomic).
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], T], *, urgent: bool = False) -> Future[T]:
        """Queue `job`; RuntimeError once shut down."""
        future: Future[T] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the SQLite writer has been shut down")
            (self._urgent if urgent else self._normal).append((job, future))
            self._ready.notify()
        return future

    def shutdown(self) -> None:
        """Stop taking jobs; the thread ends once the queued ones have run."""
        with self._ready:
            self._closed = True
            self._ready.notify()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not (self._urgent or self._normal or self._closed):
                    self._ready.wait()
                if self._urgent:
                    job, future = self._urgent.popleft()
                elif self._normal:
                    job, future = self._normal.popleft()
                else:
                    return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as err:  # handed to the awaiting task, as an executor would
                future.set_exception(err)

"""Redelivered Slack requests get the first delivery's answer, and nothing is done twice.

Slack retries a request it thinks went unanswered (`X-Slack-Retry-Num`), a proxy may repeat one, and a
double-click can send the same payload twice. A slash command, a button press and a modal submission
each carry a fresh `trigger_id`, so two byte-identical signed bodies are one user action delivered twice.
The first runs; the others wait for its answer and get a copy of it (a modal's field errors included),
so the user sees one outcome. Creates are also guarded by the outbox across processes; this keeps
reads, modals and acks from being repeated within one process.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Answer", "RecentRequests"]


@dataclass(frozen=True)
class Answer:
    """An HTTP answer that can be given again."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class RecentRequests:
    """The answers to requests seen in the last `ttl` seconds (at most `capacity`), by body hash."""

    def __init__(
        self, *, ttl: float = 600.0, capacity: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[bytes, tuple[float, asyncio.Future[Answer]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    async def once(self, body: bytes, handle: Callable[[], Awaitable[Answer]]) -> tuple[Answer, bool]:
        """`handle()`'s answer for the first delivery of `body`, a copy for the others: (answer, first)."""
        self._expire()
        digest = hashlib.sha256(body).digest()
        seen = self._seen.get(digest)
        if seen is not None:
            return await asyncio.shield(seen[1]), False
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._seen[digest] = (self._clock(), future)
        try:
            answer = await handle()
        except BaseException as err:
            # Nothing to replay: a later delivery is handled afresh (the outbox still guards creates).
            del self._seen[digest]
            if isinstance(err, Exception):
                future.set_exception(err)
                future.exception()  # retrieved, so an unawaited failure is not reported as lost
            else:
                future.cancel()
            raise
        future.set_result(answer)
        return answer, True

    def _expire(self) -> None:
        now = self._clock()
        while self._seen:
            digest, (at, future) = next(iter(self._seen.items()))
            if now - at < self._ttl and len(self._seen) < self._capacity:
                break
            if not future.done() and now - at < self._ttl:
                break  # still being handled; never drop an answer someone waits for
            del self._seen[digest]

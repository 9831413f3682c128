"""Fault injection: programmed misbehaviour (latency, error statuses, dropped connections, held answers)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final, Literal, get_args

from aiohttp import web

from bot.sandbox.twilio.errors import _error_response
from bot.sandbox.twilio.state import SimState

FaultKind = Literal["latency", "status", "reset", "apply_then_reset", "apply_then_hold"]
FAULT_KINDS: Final = frozenset(get_args(FaultKind))


@dataclass
class Fault:
    """One programmed misbehaviour, matched by method and path, used up after `times` requests."""

    kind: FaultKind
    method: str | None = None  # match only this HTTP method (None: any)
    path_contains: str | None = None  # match only paths containing this (None: any)
    times: int = 1  # how many matching requests it affects
    seconds: float = 0.0  # latency: delay before answering
    status: int = 500  # status: 429/500/503 with a Twilio-shaped error body
    retry_after: float | None = None  # status: Retry-After header

    def __post_init__(self) -> None:
        # Faults also arrive as JSON over /_sim/faults, so check types as well as values.
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}")
        for name in ("method", "path_contains"):
            if not isinstance(getattr(self, name), str | None):
                raise ValueError(f"fault {name} must be a string or null")
        if not _is_int(self.times) or self.times < 1:
            raise ValueError("fault times must be a positive integer")
        if not _is_number(self.seconds) or self.seconds < 0:
            raise ValueError("fault seconds must be a number >= 0")
        if not _is_int(self.status) or not 400 <= self.status <= 599:
            raise ValueError("fault status must be an HTTP error status (400-599)")
        if self.retry_after is not None and (not _is_number(self.retry_after) or self.retry_after < 0):
            raise ValueError("fault retry_after must be a number >= 0 or null")

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_contains is None or self.path_contains in path


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class FaultInjection(SimState):
    """Faults queued by tests, taken by requests, and requests held until released."""

    def inject(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in the order injected, the first match applies."""
        self._faults.inject(fault)

    def clear_faults(self) -> None:
        """Forget every fault not yet used up."""
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """The faults still active (copies; `times` is what is left)."""
        return self._faults.copies()

    def release_held(self) -> int:
        """Let every request held by `apply_then_hold` answer now; returns how many were held."""
        held = self._held
        self._release.set()
        self._release = asyncio.Event()
        return held

    @property
    def held(self) -> int:
        """How many requests are waiting for `release_held()`."""
        return self._held

    async def wait_held(self, count: int = 1) -> None:
        """Wait until at least `count` requests are held (wrap it in `asyncio.timeout`)."""
        async with self._held_changed:
            await self._held_changed.wait_for(lambda: self._held >= count)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        return self._faults.take(lambda fault: fault.matches(method, path))

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Error"
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
        return _error_response(fault.status, 20000 + fault.status, phrase, headers)

    async def _hold(self) -> None:
        release = self._release
        async with self._held_changed:
            self._held += 1
            self._held_changed.notify_all()
        try:
            await release.wait()
        finally:
            self._held -= 1


def _drop_connection(request: web.Request) -> web.Response:
    # Closing the transport before answering makes the client see a disconnect with no status;
    # aiohttp then fails to write the response below and quietly drops it.
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)

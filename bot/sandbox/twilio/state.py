"""What the simulator holds, shared by its parts: accounts, messages, the request log, faults, held requests.

`SimState` is the base of `TwilioSimulator`; the accounts, the Messages API, fault injection and the
`/_sim/` control routes each add their part on top of it (one mixin a module).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING

from aiohttp import web

from bot.sandbox.twilio.clock import SimClock

if TYPE_CHECKING:
    from bot.sandbox.twilio.accounts import _Account
    from bot.sandbox.twilio.faults import Fault
    from bot.sandbox.twilio.messages import StoredMessage
    from bot.sandbox.twilio.recording import RecordedRequest


class SimState:
    """The simulator's state; every part reads and changes it through ``self``."""

    def __init__(self, clock: SimClock | None = None, *, host: str = "127.0.0.1") -> None:
        self.clock = clock or SimClock()
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.messages: dict[str, StoredMessage] = {}
        self._accounts: dict[str, _Account] = {}
        self._api_keys: dict[str, str] = {}  # API key SID → owning account SID
        self._by_account: dict[str, list[StoredMessage]] = {}  # in creation order, deleted ones flagged
        self._seq = itertools.count(1)
        self._faults: list[Fault] = []
        self._release = asyncio.Event()
        self._held = 0
        self._held_changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

"""What the simulator holds, shared by its parts: accounts, messages, the request log, faults, held requests,
webhooks to the bot (status callbacks, inbound texts), phone numbers, opt-outs and inbound media.

`SimState` is the base of `TwilioSimulator`; the accounts, the Messages API, fault injection and the
`/_sim/` control routes each add their part on top of it (one mixin a module).
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from bot.sandbox.twilio.clock import SimClock
from bot.sandbox.twilio.fault_queue import FaultQueue
from bot.sandbox.twilio.webhooks import CALLBACK_POLICY, INBOUND_POLICY, Webhook

if TYPE_CHECKING:
    from bot.sandbox.twilio.accounts import _Account
    from bot.sandbox.twilio.callbacks import CallbackFault, _Cursor, _Due
    from bot.sandbox.twilio.faults import Fault
    from bot.sandbox.twilio.media import MediaFetch, _Media
    from bot.sandbox.twilio.messages import StoredMessage
    from bot.sandbox.twilio.phone_numbers import _PhoneNumber, _Service
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
        self._faults: FaultQueue[Fault] = FaultQueue()
        self._release = asyncio.Event()
        self._held = 0
        self._held_changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._session: aiohttp.ClientSession | None = None  # for webhooks to the bot
        self._stopping = asyncio.Event()  # set by stop(): hanging answers give up
        # Webhooks to the bot: one record each, status callbacks and inbound texts alike.
        self.webhooks: list[Webhook] = []
        self.callback_policy = CALLBACK_POLICY
        self.inbound_policy = INBOUND_POLICY
        self._callback_cursors: dict[str, _Cursor] = {}
        self._callback_heap: list[tuple[datetime, int, str]] = []
        # Faults for status callbacks, queued by tests (`callback_faults.inject`); the first match applies.
        self.callback_faults: FaultQueue[CallbackFault] = FaultQueue()
        self._callback_chains: dict[str, asyncio.Task[None]] = {}
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self._callback_wake = asyncio.Event()
        self._callback_loop_task: asyncio.Task[None] | None = None
        self._callbacks_holding = False
        self._held_callbacks: list[_Due] = []
        self._webhook_slots = asyncio.Semaphore(32)
        # Phone numbers and Messaging Services, made on first use from the accounts' numbers.
        self._phone_numbers: dict[str, _PhoneNumber] = {}
        self._services: dict[str, _Service] = {}
        # Opt-outs: (account SID, our number, their number), all without a channel prefix.
        self._opted_out: set[tuple[str, str, str]] = set()
        self._inbound_tasks: set[asyncio.Task[Webhook]] = set()
        # Inbound media and the "CDN" that serves it on a port of its own.
        self._media: dict[str, _Media] = {}
        self._cdn: dict[str, str] = {}  # CDN token → media SID
        self.media_fetches: list[MediaFetch] = []
        self._cdn_runner: web.AppRunner | None = None
        self._cdn_port: int | None = None

    @property
    def port(self) -> int:
        """The port it listens on (after `start`)."""
        if self._port is None:
            raise RuntimeError("TwilioSimulator has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:43210` (after `start`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

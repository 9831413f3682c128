"""Status callbacks: Twilio POSTs each status a message takes to the `StatusCallback` its create gave.

The schedule is the simulator's status clock (`StoredMessage.timeline`): queued → sent → delivered (a
To ending in 0666: undelivered with ErrorCode 30003); a scheduled message calls back `scheduled` at once
and queued → sent → delivered from its SendAt, or `canceled` when cancelled. A Messaging Service's
`accepted` is not called back. With a fixed clock callbacks go out when the clock is advanced past their
time; with a clock that follows real time, when that time comes.

Callbacks are signed with the account's auth token (`webhooks.post_webhook`), sent one at a time per
message in status order, and retried only when the connection fails (Twilio does not retry an HTTP
error). For tests:

* `settle_callbacks()` sends what is due now and waits until every callback in flight has answered;
* `hold_callbacks()` keeps due callbacks back; `flush_callbacks(order="reverse")` sends the held ones,
  strictly one after another, in due or reverse order; `release_callbacks()` also stops holding;
* `callback_faults.inject(CallbackFault("drop" | "duplicate" | "late", message_sid=…, status=…))` makes
  a matching callback never go out, go out twice, or go out after the message's next one (the first
  that matches applies; `callback_faults.clear()` forgets those not used up);
* `status_callbacks` is every callback made (or dropped), with each attempt's HTTP answer.

The same controls are under ``/_sim/callbacks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, get_args

from aiohttp import web

from bot.sandbox.twilio.control import _bad_control, _json_object, sim_route
from bot.sandbox.twilio.formats import API_VERSION
from bot.sandbox.twilio.messages import MessagesApi, StoredMessage
from bot.sandbox.twilio.webhooks import Webhook, post_webhook

CallbackFaultKind = Literal["drop", "duplicate", "late"]
CALLBACK_FAULT_KINDS: Final = frozenset(get_args(CallbackFaultKind))
CALLBACK_STATUSES: Final = frozenset(
    {"scheduled", "queued", "sent", "delivered", "undelivered", "failed", "canceled", "read"}
)
_ERROR_STATUSES: Final = frozenset({"undelivered", "failed"})
_heap_seq = itertools.count()


@dataclass
class CallbackFault:
    """A misbehaviour for the next `times` callbacks that match (by message and/or status; None: any)."""

    kind: CallbackFaultKind
    message_sid: str | None = None
    status: str | None = None
    times: int = 1

    def __post_init__(self) -> None:
        # These also arrive as JSON over /_sim/callbacks/faults, so check types as well as values.
        if self.kind not in CALLBACK_FAULT_KINDS:
            raise ValueError(f"callback fault kind must be one of {sorted(CALLBACK_FAULT_KINDS)}")
        if not isinstance(self.message_sid, str | None):
            raise ValueError("callback fault message_sid must be a string or null")
        if self.status is not None and self.status not in CALLBACK_STATUSES:
            raise ValueError(f"callback fault status must be one of {sorted(CALLBACK_STATUSES)} or null")
        if not isinstance(self.times, int) or isinstance(self.times, bool) or self.times < 1:
            raise ValueError("callback fault times must be a positive integer")

    def matches(self, message_sid: str, status: str) -> bool:
        """Whether this fault applies to the callback of `message_sid` reporting `status`."""
        return self.message_sid in (None, message_sid) and self.status in (None, status)


@dataclass(eq=False)
class _Due:
    message: StoredMessage
    status: str
    at: datetime
    fault: CallbackFaultKind | None = None


@dataclass(eq=False)
class _Cursor:
    message: StoredMessage
    emitted: int = 0  # timeline steps already called back (or skipped)
    late: list[_Due] = field(default_factory=list)  # held back until the message's next callback


class StatusCallbacks(MessagesApi):
    """Calls each message's StatusCallback on the status clock, with faults, holding and a record."""

    @property
    def status_callbacks(self) -> list[Webhook]:
        """Every status callback made or dropped, in the order they were sent."""
        return [w for w in self.webhooks if w.kind == "status_callback"]

    def hold_callbacks(self) -> None:
        """Keep every callback that falls due from now on until `flush_callbacks`/`release_callbacks`."""
        self._callbacks_holding = True

    @property
    def held_callbacks(self) -> int:
        """How many due callbacks are being held."""
        return len(self._held_callbacks)

    async def flush_callbacks(self, order: Literal["due", "reverse"] = "due") -> int:
        """Send the held callbacks one after another (due or reverse order), wait for them; returns how many.

        Holding goes on for callbacks that fall due later; `release_callbacks` ends it.
        """
        if order not in ("due", "reverse"):
            raise ValueError("order must be 'due' or 'reverse'")
        await self.settle_callbacks()
        held, self._held_callbacks = self._held_callbacks, []
        if order == "reverse":
            held.reverse()
        for due in held:
            await self._post_status_callback(due, None)
        return len(held)

    async def release_callbacks(self, order: Literal["due", "reverse"] = "due") -> int:
        """Stop holding and send what was held (see `flush_callbacks`); returns how many."""
        self._callbacks_holding = False
        return await self.flush_callbacks(order)

    async def settle_callbacks(self) -> None:
        """Send every callback due by the clock now (unless held) and wait until all in flight are done."""
        self._dispatch_due(self._collect_due_callbacks())
        while self._callback_tasks:
            await asyncio.gather(*list(self._callback_tasks), return_exceptions=True)

    # ----- schedule --------------------------------------------------------------------------------

    def _track_callbacks(self, message: StoredMessage) -> None:
        """Follow `message`'s statuses (again, after a cancel changed them) if its create set a callback."""
        if message.status_callback is None:
            return
        self._callback_cursors.setdefault(message.sid, _Cursor(message))
        heapq.heappush(self._callback_heap, (self.clock.now(), next(_heap_seq), message.sid))
        self._wake_callbacks()

    def _wake_callbacks(self) -> None:
        self._callback_wake.set()

    def _collect_due_callbacks(self) -> list[_Due]:
        if self._session is None:
            return []
        now, due = self.clock.now(), list[_Due]()
        while self._callback_heap and self._callback_heap[0][0] <= now:
            _, _, sid = heapq.heappop(self._callback_heap)
            cursor = self._callback_cursors.get(sid)
            if cursor is None:
                continue
            steps = cursor.message.timeline()
            while cursor.emitted < len(steps) and steps[cursor.emitted][0] <= now:
                at, status = steps[cursor.emitted]
                cursor.emitted += 1
                if status != "accepted":
                    due.extend(self._apply_callback_fault(cursor, _Due(cursor.message, status, at)))
            if cursor.emitted < len(steps):
                heapq.heappush(self._callback_heap, (steps[cursor.emitted][0], next(_heap_seq), sid))
            else:
                due.extend(cursor.late)
                del self._callback_cursors[sid]
        return due

    def _apply_callback_fault(self, cursor: _Cursor, due: _Due) -> list[_Due]:
        fault = self._take_callback_fault(due.message.sid, due.status)
        if fault == "drop":
            self.webhooks.append(self._callback_record(dataclasses.replace(due, fault="drop")))
            self.webhooks[-1].note = "dropped by a callback fault"
            self.webhooks[-1].done = True
            return []
        if fault == "late":
            cursor.late.append(dataclasses.replace(due, fault="late"))
            return []
        out = [due]
        if fault == "duplicate":
            out.append(dataclasses.replace(due, fault="duplicate"))
        out.extend(cursor.late)
        cursor.late.clear()
        return out

    def _take_callback_fault(self, message_sid: str, status: str) -> CallbackFaultKind | None:
        fault = self.callback_faults.take(lambda f: f.matches(message_sid, status))
        return fault.kind if fault is not None else None

    def _dispatch_due(self, due: list[_Due]) -> None:
        if self._callbacks_holding:
            self._held_callbacks.extend(due)
            return
        for item in due:
            sid = item.message.sid
            task = asyncio.create_task(self._post_status_callback(item, self._callback_chains.get(sid)))
            self._callback_chains[sid] = task
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task[None]) -> None:
        self._callback_tasks.discard(task)
        for sid, latest in list(self._callback_chains.items()):
            if latest is task:
                del self._callback_chains[sid]

    async def _callback_loop(self) -> None:
        while True:
            self._callback_wake.clear()
            self._dispatch_due(self._collect_due_callbacks())
            delay: float | None = None
            if self._callback_heap and self.clock.follows_real_time:
                ahead = (self._callback_heap[0][0] - self.clock.now()).total_seconds()
                delay = max(ahead, 0.0) + 0.001
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._callback_wake.wait(), delay)

    # ----- sending ---------------------------------------------------------------------------------

    def _callback_record(self, due: _Due) -> Webhook:
        message = due.message
        state = message.state(due.at)
        form = [("MessageSid", message.sid), ("SmsSid", message.sid), ("AccountSid", message.account_sid)]
        if state.from_ is not None:
            form.append(("From", state.from_))
        form += [
            ("To", message.to),
            ("MessageStatus", due.status),
            ("SmsStatus", due.status),
            ("ApiVersion", API_VERSION),
        ]
        if message.messaging_service_sid is not None:
            form.append(("MessagingServiceSid", message.messaging_service_sid))
        if due.status in _ERROR_STATUSES:
            form.append(("ErrorCode", str(state.error_code or 30003)))
        return Webhook(
            kind="status_callback",
            url=message.status_callback,
            method="POST",
            form=form,
            account_sid=message.account_sid,
            message_sid=message.sid,
            time=due.at,
            message_status=due.status,
            fault=due.fault,
        )

    async def _post_status_callback(self, due: _Due, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        account = self._accounts.get(due.message.account_sid)
        record = self._callback_record(due)
        self.webhooks.append(record)
        if account is None or self._session is None:
            record.note, record.done = "the account or the simulator is gone", True
            return
        async with self._webhook_slots:
            await post_webhook(self._session, record, account.auth_token, self.callback_policy)

    # ----- /_sim/callbacks -------------------------------------------------------------------------

    @sim_route("GET", "/_sim/callbacks")
    async def _sim_callbacks(self, request: web.Request) -> web.Response:
        return web.json_response([w.to_json() for w in self.status_callbacks])

    @sim_route("POST", "/_sim/callbacks/hold")
    async def _sim_hold_callbacks(self, request: web.Request) -> web.Response:
        self.hold_callbacks()
        return web.json_response({"held": self.held_callbacks})

    @sim_route("POST", "/_sim/callbacks/flush")
    async def _sim_flush_callbacks(self, request: web.Request) -> web.Response:
        data = await _json_object(request) if request.can_read_body else {}
        order, release = data.get("order", "due"), data.get("release", False)
        if order not in ("due", "reverse") or not isinstance(release, bool):
            raise _bad_control("order must be 'due' or 'reverse', release true or false")
        count = await (self.release_callbacks(order) if release else self.flush_callbacks(order))
        return web.json_response({"flushed": count})

    @sim_route("POST", "/_sim/callbacks/settle")
    async def _sim_settle_callbacks(self, request: web.Request) -> web.Response:
        await self.settle_callbacks()
        return web.json_response({"callbacks": len(self.status_callbacks)})

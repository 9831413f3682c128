"""A Twilio Messages API simulator: a real aiohttp server on loopback.

The playground, the tests and the benchmarks point the bot's `TWILIO_API_URL` here. It speaks the
Messages and Account routes of API v2010 with Twilio's JSON shapes, error codes, magic test numbers and
Basic auth, moves message statuses on with a `SimClock` (computed on read, no background tasks), and can
be told to misbehave (`Fault`) so retries, timeouts and unknown outcomes can be tested end to end::

    sim = TwilioSimulator(SimClock())
    sim.add_account("AC…", "token", numbers=["+15557654321"], services=["MG…"])
    base_url = await sim.start()          # http://127.0.0.1:PORT
    sim.inject(Fault("status", status=429, retry_after=1))
    ...
    await sim.stop()

Out of process, the same controls are JSON routes under `/_sim/` (no auth: it only listens on loopback),
and `python -m bot.sandbox.twilio` runs it alone, printing its URL as the first line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import dataclasses
import hmac
import itertools
import json
import math
import re
import secrets
import signal
import sys
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Literal, get_args
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

API_VERSION: Final = "2010-04-01"
API_PREFIX: Final = f"/{API_VERSION}"

MAGIC_FROM: Final = "+15005550006"
"""Twilio's magic sender: accepted as a valid From for every account."""
DEFAULT_FROM: Final = "+15557654321"
"""The sandbox account's ordinary number."""
SANDBOX_ACCOUNT_SID: Final = "AC" + "5a4db0c5" * 4
DEFAULT_SERVICE_SID: Final = "MG" + "5e41ce00" * 4


@dataclass(frozen=True)
class SandboxAccount:
    """The well-known account the playground and `python -m bot.sandbox.twilio` create."""

    sid: str
    friendly_name: str
    numbers: tuple[str, ...]
    service_sid: str


SANDBOX_ACCOUNT: Final = SandboxAccount(
    sid=SANDBOX_ACCOUNT_SID,
    friendly_name="Sandbox",
    numbers=(MAGIC_FROM, DEFAULT_FROM),
    service_sid=DEFAULT_SERVICE_SID,
)

# Status timing, measured from creation (or from SendAt for scheduled messages).
SERVICE_QUEUED_AFTER: Final = timedelta(milliseconds=500)
SENT_AFTER: Final = timedelta(seconds=1)
DELIVERED_AFTER: Final = timedelta(seconds=3)
SCHEDULE_MIN_AHEAD: Final = timedelta(seconds=900)
SCHEDULE_MAX_AHEAD: Final = timedelta(days=35)
MAX_BODY_CHARS: Final = 1600
MAX_MEDIA: Final = 10
MAX_PAGE_SIZE: Final = 1000
DEFAULT_PAGE_SIZE: Final = 50
UNDELIVERED_SUFFIX: Final = "0666"
"""A To number ending in this ends up `undelivered` with error 30003 instead of `delivered`."""
PRICE_PER_SEGMENT: Final = Decimal("0.00750")
NOT_COMPLETE: Final = frozenset({"accepted", "scheduled", "queued", "sending"})

MAGIC_TO_ERRORS: Final[Mapping[str, int]] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MAGIC_FROM_ERRORS: Final[Mapping[str, int]] = {
    "+15005550001": 21212,
    "+15005550007": 21606,
    "+15005550008": 21611,
}

ERRORS: Final[Mapping[int, tuple[int, str]]] = {
    20001: (400, "Invalid parameter"),
    20003: (401, "Authenticate"),
    20004: (405, "Method not allowed"),
    20009: (400, "Cannot delete this resource before it is complete"),
    20404: (404, "The requested resource was not found"),
    21211: (400, "Invalid 'To' Phone Number"),
    21212: (400, "Invalid 'From' Phone Number"),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    ),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number "
        "for this destination/account",
    ),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21611: (400, "This 'From' number has exceeded the maximum number of queued messages"),
    21612: (400, "The 'To' phone number is not currently reachable via SMS"),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit"),
    21623: (400, "Number of media files exceeds allowed limit"),
    21701: (400, "The Messaging Service Sid is invalid"),
    21910: (400, "Invalid From and To pair. From and To should be of the same channel"),
    30409: (400, "Message cannot be canceled"),
    35111: (400, "SendAt timestamp is missing"),
    35114: (400, "Scheduling does not support this timestamp"),
    35118: (400, "MessagingServiceSid is required to schedule a message"),
    35126: (400, "The ScheduleType value provided is not supported"),
}

_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_API_KEY_SID = re.compile(r"SK[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_DATE_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}")
_MESSAGES_PATH = re.compile(rf"{API_PREFIX}/Accounts/(?P<account>[^/]+)/Messages\.json")
_MESSAGE_PATH = re.compile(rf"{API_PREFIX}/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json")
_ACCOUNT_PATH = re.compile(rf"{API_PREFIX}/Accounts/(?P<account>[^/]+)\.json")
_WHATSAPP = "whatsapp:"
_LIST_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")
_ACCOUNT_SUBRESOURCES = {
    "available_phone_numbers": "AvailablePhoneNumbers",
    "calls": "Calls",
    "conferences": "Conferences",
    "incoming_phone_numbers": "IncomingPhoneNumbers",
    "notifications": "Notifications",
    "outgoing_caller_ids": "OutgoingCallerIds",
    "recordings": "Recordings",
    "transcriptions": "Transcriptions",
    "addresses": "Addresses",
    "signing_keys": "SigningKeys",
    "connect_apps": "ConnectApps",
    "sip": "SIP",
    "authorized_connect_apps": "AuthorizedConnectApps",
    "usage": "Usage",
    "keys": "Keys",
    "applications": "Applications",
    "short_codes": "SMS/ShortCodes",
    "queues": "Queues",
    "messages": "Messages",
    "balance": "Balance",
}
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc2822(moment: datetime) -> str:
    """Format an aware datetime the way Twilio does: `Thu, 24 Aug 2023 05:01:45 +0000`."""
    # Hand-rolled rather than email.utils/strftime: it is on every message of every list page.
    m = moment.astimezone(UTC)
    return (
        f"{_DAYS[m.weekday()]}, {m.day:02d} {_MONTHS[m.month - 1]} {m.year:04d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} +0000"
    )


def segment_count(body: str) -> int:
    """SMS segments for a body: GSM-7 160/153 characters, otherwise UCS-2 70/67 code units."""
    if not body:
        return 1
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in body):
        units = len(body) + sum(ch in _GSM7_EXTENDED for ch in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


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
        return self.now()


class TwilioApiError(Exception):
    """An error answer in Twilio's shape: `{code, message, more_info, status}`."""

    def __init__(self, code: int, message: str | None = None, *, status: int | None = None) -> None:
        default_status, default_message = ERRORS.get(code, (400, "Invalid request"))
        self.code = code
        self.status = status or default_status
        self.message = message or default_message
        super().__init__(f"{self.code}: {self.message}")

    def response(self) -> web.Response:
        """The JSON answer Twilio would give."""
        return _error_response(self.status, self.code, self.message)


def _error_response(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


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


@dataclass
class RecordedRequest:
    """One request the simulator received (API routes only, not `/_sim/`). Never holds a secret."""

    method: str
    path: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    username: str | None  # the Basic auth user (account or API key SID); the password is never kept
    time: datetime  # sim clock
    fault: FaultKind | None = None  # the fault applied to it, if any
    status: int | None = None  # the answer's status once handled (None: connection dropped first)
    message_sid: str | None = None  # the message created or addressed, if any

    @property
    def account_sid(self) -> str | None:
        """The account SID in the path, if the path has one."""
        for pattern in (_MESSAGES_PATH, _MESSAGE_PATH, _ACCOUNT_PATH):
            if match := pattern.fullmatch(self.path):
                return match["account"]
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for `GET /_sim/requests`)."""
        data = dataclasses.asdict(self)
        data["time"] = self.time.isoformat()
        data["account_sid"] = self.account_sid
        return data


@dataclass(frozen=True)
class MessageState:
    """A stored message as seen at one moment."""

    status: str
    from_: str | None
    date_sent: datetime | None
    date_updated: datetime
    num_segments: int
    error_code: int | None
    error_message: str | None


@dataclass(eq=False)
class StoredMessage:
    """A message in the store; its status is derived from the clock whenever it is read."""

    sid: str
    account_sid: str
    seq: int
    to: str
    requested_from: str | None
    sender: str  # the From it goes out with once queued
    body: str
    media_urls: tuple[str, ...]
    messaging_service_sid: str | None
    date_created: datetime
    send_at: datetime | None = None
    status_callback: str | None = None
    canceled_at: datetime | None = None
    redacted_at: datetime | None = None
    deleted: bool = False

    def state(self, now: datetime) -> MessageState:
        """Status and timestamps at `now`."""
        if self.send_at is not None and (self.canceled_at is not None or now < self.send_at):
            status = "canceled" if self.canceled_at is not None else "scheduled"
            return self._state(status, None, self.canceled_at or self.date_created)
        origin = self.send_at or self.date_created
        steps = [(origin, "queued")]
        if self.send_at is None and self.messaging_service_sid is not None:
            steps = [(origin, "accepted"), (origin + SERVICE_QUEUED_AFTER, "queued")]
        final = "undelivered" if _strip_channel(self.to).endswith(UNDELIVERED_SUFFIX) else "delivered"
        steps += [(origin + SENT_AFTER, "sent"), (origin + DELIVERED_AFTER, final)]
        changed, status = steps[0]
        for at, name in steps[1:]:
            if at <= now:
                changed, status = at, name
        date_sent = origin + SENT_AFTER if now >= origin + SENT_AFTER else None
        return self._state(status, date_sent, changed)

    def _state(self, status: str, date_sent: datetime | None, changed: datetime) -> MessageState:
        assigned = status not in ("accepted", "scheduled", "canceled")
        from_ = self.requested_from or (self.sender if assigned else None)
        # Twilio reports 0 segments until a Messaging Service has picked the sender.
        segments = segment_count(self.body) if assigned or self.messaging_service_sid is None else 0
        failed = status == "undelivered"
        return MessageState(
            status=status,
            from_=from_,
            date_sent=date_sent,
            date_updated=max(changed, self.redacted_at or changed),
            num_segments=segments,
            error_code=30003 if failed else None,
            error_message="Unreachable destination handset" if failed else None,
        )

    def to_json(self, now: datetime, state: MessageState | None = None) -> dict[str, Any]:
        """The message resource exactly as Twilio shapes it."""
        state = state or self.state(now)
        base = f"{API_PREFIX}/Accounts/{self.account_sid}/Messages/{self.sid}"
        price = PRICE_PER_SEGMENT * max(state.num_segments, 1)
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(state.date_sent) if state.date_sent else None,
            "date_updated": rfc2822(state.date_updated),
            "direction": "outbound-api",
            "error_code": state.error_code,
            "error_message": state.error_message,
            "from": state.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(state.num_segments),
            "price": f"-{price}" if state.date_sent else None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": state.status,
            "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
            "to": self.to,
            "uri": f"{base}.json",
        }


@dataclass
class _Account:
    sid: str
    auth_token: str = field(repr=False)
    friendly_name: str
    numbers: tuple[str, ...]
    services: frozenset[str]
    api_keys: dict[str, str] = field(repr=False)
    date_created: datetime


def _strip_channel(address: str) -> str:
    return address.removeprefix(_WHATSAPP)


def _form_value(form: MultiDictProxy[Any], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else None


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, secret = decoded.partition(":")
    return (user, secret) if sep else None


def _parse_send_at(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _parse_date(name: str, text: str) -> date:
    if _DATE_PREFIX.match(text):
        with_suffix_ok = len(text) == 10 or text[10] in "T "
        if with_suffix_ok:
            try:
                return date.fromisoformat(text[:10])
            except ValueError:
                pass
    raise TwilioApiError(20001, f"Invalid {name}: expected YYYY-MM-DD")


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = query.get(name, "")
    if text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        limits = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise TwilioApiError(20001, f"{name} must be an integer {limits}")
    return value


class TwilioSimulator:
    """A Twilio Messages API server on loopback with fault injection and a record of every request."""

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

    # ----- lifecycle -------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        """Listen on `host:port` (0 picks a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("TwilioSimulator is already running")
        app = web.Application()
        app.router.add_get("/_sim/", self._sim_state)
        app.router.add_get("/_sim/faults", self._sim_list_faults)
        app.router.add_post("/_sim/faults", self._sim_inject)
        app.router.add_delete("/_sim/faults", self._sim_clear_faults)
        app.router.add_post("/_sim/release", self._sim_release)
        app.router.add_post("/_sim/advance", self._sim_advance)
        app.router.add_get("/_sim/requests", self._sim_requests)
        app.router.add_delete("/_sim/requests", self._sim_clear_requests)
        app.router.add_get("/_sim/messages", self._sim_messages)
        app.router.add_post("/_sim/accounts", self._sim_add_account)
        app.router.add_route("*", "/{tail:.*}", self._handle_api)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        """Release held requests and shut the server down."""
        self.release_held()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> TwilioSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

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

    # ----- accounts --------------------------------------------------------------------------------

    def add_account(
        self,
        sid: str,
        auth_token: str,
        *,
        friendly_name: str = "Sandbox",
        api_keys: Mapping[str, str] | None = None,
        numbers: Iterable[str] = (),
        services: Iterable[str] = (),
    ) -> None:
        """Add (or replace) an account: its auth token, API keys (SK… → secret), numbers and services.

        Every service's sender pool is the account's numbers (the first one sends).
        """
        if not isinstance(sid, str) or not _ACCOUNT_SID.fullmatch(sid):
            raise ValueError("account sid must be AC followed by 32 hex digits")
        if not isinstance(auth_token, str) or not auth_token:
            raise ValueError("auth_token must be a non-empty string")
        keys = dict(api_keys or {})
        for key_sid, secret in keys.items():
            if not _API_KEY_SID.fullmatch(key_sid) or not isinstance(secret, str) or not secret:
                raise ValueError("api_keys must map SK + 32 hex digits to a non-empty secret")
            owner = self._api_keys.get(key_sid)
            if owner is not None and owner != sid:
                raise ValueError(f"API key {key_sid} already belongs to another account")
        own_numbers = tuple(dict.fromkeys(_strip_channel(n) for n in numbers))
        if not all(isinstance(n, str) and _E164.fullmatch(n) for n in own_numbers):
            raise ValueError("numbers must be E.164, like +15557654321")
        service_sids = frozenset(services)
        if not all(isinstance(s, str) and _SERVICE_SID.fullmatch(s) for s in service_sids):
            raise ValueError("services must be MG followed by 32 hex digits")
        previous = self._accounts.get(sid)
        if previous is not None:
            for key_sid in previous.api_keys:
                self._api_keys.pop(key_sid, None)
        self._accounts[sid] = _Account(
            sid=sid,
            auth_token=auth_token,
            friendly_name=friendly_name,
            numbers=own_numbers,
            services=service_sids,
            api_keys=keys,
            date_created=previous.date_created if previous else self.clock.now(),
        )
        self._api_keys.update(dict.fromkeys(keys, sid))
        self._by_account.setdefault(sid, [])

    def add_sandbox_account(self, auth_token: str | None = None) -> str:
        """Add `SANDBOX_ACCOUNT` with `auth_token` (random when None); returns the token."""
        token = auth_token or secrets.token_hex(16)
        self.add_account(
            SANDBOX_ACCOUNT.sid,
            token,
            friendly_name=SANDBOX_ACCOUNT.friendly_name,
            numbers=SANDBOX_ACCOUNT.numbers,
            services=(SANDBOX_ACCOUNT.service_sid,),
        )
        return token

    # ----- faults and inspection -------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in the order injected, the first match applies."""
        self._faults.append(dataclasses.replace(fault))

    def clear_faults(self) -> None:
        """Forget every fault not yet used up."""
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """The faults still active (copies; `times` is what is left)."""
        return [dataclasses.replace(f) for f in self._faults]

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

    def creates(self, account_sid: str | None = None) -> list[RecordedRequest]:
        """The message creates that were applied (stored), optionally for one account."""
        return [
            r
            for r in self.requests
            if r.method == "POST"
            and r.status == 201
            and _MESSAGES_PATH.fullmatch(r.path)
            and (account_sid is None or r.account_sid == account_sid)
        ]

    def message_json(self, sid: str) -> dict[str, Any]:
        """A stored message as the API would show it now."""
        return self.messages[sid].to_json(self.clock.now())

    # ----- the API ---------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        credentials = _basic_credentials(request)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=list(request.query.items()),
            form=[(k, v) for k, v in form.items() if isinstance(v, str)],
            username=credentials[0] if credentials else None,
            time=self.clock.now(),
        )
        self.requests.append(record)
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "latency":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "status":
                record.status = fault.status
                return self._fault_response(fault)
            elif fault.kind == "reset":
                return _drop_connection(request)
        try:
            response = self._dispatch(request, form, credentials, record)
        except TwilioApiError as err:
            response = err.response()
        record.status = response.status
        if fault is not None and fault.kind == "apply_then_reset":
            return _drop_connection(request)
        if fault is not None and fault.kind == "apply_then_hold":
            await self._hold()
        return response

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.matches(method, path):
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[index]
                return fault
        return None

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

    def _dispatch(
        self,
        request: web.Request,
        form: MultiDictProxy[Any],
        credentials: tuple[str, str] | None,
        record: RecordedRequest,
    ) -> web.Response:
        method, path = request.method, request.path
        now = self.clock.now()
        if match := _MESSAGES_PATH.fullmatch(path):
            account = self._authenticate(credentials, match["account"])
            if method == "POST":
                message = self._create(account, form, now)
                record.message_sid = message.sid
                return web.json_response(message.to_json(now), status=201)
            if method == "GET":
                return web.json_response(self._list(account, request.query, now))
        elif match := _MESSAGE_PATH.fullmatch(path):
            account = self._authenticate(credentials, match["account"])
            message = self._find(account, match["sid"], path)
            record.message_sid = message.sid
            if method == "GET":
                return web.json_response(message.to_json(now))
            if method == "POST":
                self._update(message, form, now)
                return web.json_response(message.to_json(now))
            if method == "DELETE":
                self._delete(message, now)
                return web.Response(status=204)
        elif match := _ACCOUNT_PATH.fullmatch(path):
            account = self._authenticate(credentials, match["account"])
            if method == "GET":
                return web.json_response(self._account_json(account))
        else:
            raise TwilioApiError(20404, f"The requested resource {path} was not found")
        raise TwilioApiError(20004, f"Method {method} not allowed on {path}")

    def _authenticate(self, credentials: tuple[str, str] | None, path_account: str) -> _Account:
        if credentials is not None:
            user, secret = credentials
            owner = self._api_keys.get(user, user)
            account = self._accounts.get(owner)
            if account is not None and account.sid == path_account:
                expected = account.auth_token if user == owner else account.api_keys[user]
                if hmac.compare_digest(secret.encode(), expected.encode()):
                    return account
        raise TwilioApiError(20003)

    def _find(self, account: _Account, sid: str, path: str) -> StoredMessage:
        message = self.messages.get(sid)
        if message is None or message.account_sid != account.sid:
            raise TwilioApiError(20404, f"The requested resource {path} was not found")
        return message

    def _create(self, account: _Account, form: MultiDictProxy[Any], now: datetime) -> StoredMessage:
        to = _form_value(form, "To")
        from_ = _form_value(form, "From")
        service = _form_value(form, "MessagingServiceSid")
        body = form.get("Body")
        body = body if isinstance(body, str) else ""
        media = tuple(v for v in form.getall("MediaUrl", []) if isinstance(v, str) and v)
        if to is None:
            raise TwilioApiError(21604)
        if from_ is None and service is None:
            raise TwilioApiError(21603)
        if service is not None and service not in account.services:
            raise TwilioApiError(21701, f"The Messaging Service Sid {service} is invalid")
        if from_ is not None:
            self._check_from(account, from_)
        to_number = _strip_channel(to)
        if to_number in MAGIC_TO_ERRORS:
            raise TwilioApiError(MAGIC_TO_ERRORS[to_number])
        if not _E164.fullmatch(to_number):
            raise TwilioApiError(21211, f"The 'To' number {to} is not a valid phone number.")
        whatsapp = to.startswith(_WHATSAPP)
        if from_ is not None and from_.startswith(_WHATSAPP) != whatsapp:
            raise TwilioApiError(21910)
        if not body and not media:
            raise TwilioApiError(21602)
        if len(body) > MAX_BODY_CHARS:
            raise TwilioApiError(21617)
        if len(media) > MAX_MEDIA:
            raise TwilioApiError(21623)
        send_at = self._check_schedule(form, service, now)
        pool_number = account.numbers[0] if account.numbers else MAGIC_FROM
        sender = from_ or ((_WHATSAPP if whatsapp else "") + pool_number)
        message = StoredMessage(
            sid=("MM" if media else "SM") + secrets.token_hex(16),
            account_sid=account.sid,
            seq=next(self._seq),
            to=to,
            requested_from=from_,
            sender=sender,
            body=body,
            media_urls=media,
            messaging_service_sid=service,
            date_created=now,
            send_at=send_at,
            status_callback=_form_value(form, "StatusCallback"),
        )
        self.messages[message.sid] = message
        self._by_account[account.sid].append(message)
        return message

    @staticmethod
    def _check_from(account: _Account, from_: str) -> None:
        number = _strip_channel(from_)
        if number in MAGIC_FROM_ERRORS:
            raise TwilioApiError(MAGIC_FROM_ERRORS[number])
        if not _E164.fullmatch(number):
            raise TwilioApiError(21212, f"The 'From' number {from_} is not a valid phone number.")
        if number != MAGIC_FROM and number not in account.numbers:
            raise TwilioApiError(21606)

    @staticmethod
    def _check_schedule(form: MultiDictProxy[Any], service: str | None, now: datetime) -> datetime | None:
        schedule_type = _form_value(form, "ScheduleType")
        if schedule_type is None:
            return None  # like Twilio: SendAt alone does not schedule, the message goes now
        if schedule_type != "fixed":
            raise TwilioApiError(35126, f"ScheduleType must be 'fixed', not {schedule_type!r}")
        if service is None:
            raise TwilioApiError(35118)
        text = _form_value(form, "SendAt")
        if text is None:
            raise TwilioApiError(35111)
        send_at = _parse_send_at(text)
        if send_at is None or not SCHEDULE_MIN_AHEAD <= send_at - now <= SCHEDULE_MAX_AHEAD:
            raise TwilioApiError(
                35114,
                "Scheduling does not support this timestamp: SendAt must be an ISO-8601 UTC time "
                "between 15 minutes and 35 days ahead",
            )
        return send_at

    @staticmethod
    def _update(message: StoredMessage, form: MultiDictProxy[Any], now: datetime) -> None:
        status = _form_value(form, "Status")
        body = form.get("Body")
        if status is not None and status != "canceled":
            raise TwilioApiError(20001, "Status can only be set to 'canceled'")
        if body is not None and body != "":
            raise TwilioApiError(20001, "Body can only be redacted (set to an empty string)")
        if status is not None:
            if message.state(now).status != "scheduled":
                raise TwilioApiError(30409)
            message.canceled_at = now
        if body is not None:
            message.body = ""
            message.redacted_at = now

    def _delete(self, message: StoredMessage, now: datetime) -> None:
        if message.state(now).status in NOT_COMPLETE:
            raise TwilioApiError(20009)
        message.deleted = True
        del self.messages[message.sid]

    def _list(self, account: _Account, query: Mapping[str, str], now: datetime) -> dict[str, Any]:
        filters = [(name, query[name]) for name in _LIST_FILTERS if query.get(name)]
        wanted = dict(filters)
        day = {name: _parse_date(name, text) for name, text in filters if name.startswith("DateSent")}
        page_size = _int_param(query, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        page = _int_param(query, "Page", 0, 0, None)
        token = query.get("PageToken") or None
        items = self._by_account.get(account.sid, [])
        if token is not None:
            # The token is the position after the previous page, so creates in between do not shift it.
            cursor = token.removeprefix("PA")
            if not token.startswith("PA") or not cursor.isdigit():
                raise TwilioApiError(20001, "Invalid PageToken")
            stop, skip = bisect_left(items, int(cursor), key=lambda m: m.seq), 0
        else:
            stop, skip = len(items), page * page_size
        selected: list[tuple[StoredMessage, MessageState]] = []
        has_more = False
        for index in range(stop - 1, -1, -1):
            message = items[index]
            if message.deleted or ("To" in wanted and message.to != wanted["To"]):
                continue
            state = message.state(now)
            if "From" in wanted and state.from_ != wanted["From"]:
                continue
            if day:
                sent = state.date_sent.date() if state.date_sent else None
                if sent is None or not (
                    sent == day.get("DateSent", sent)
                    and sent <= day.get("DateSent<", sent)
                    and sent >= day.get("DateSent>", sent)
                ):
                    continue
            if skip:
                skip -= 1
                continue
            if len(selected) == page_size:
                has_more = True
                break
            selected.append((message, state))

        base = f"{API_PREFIX}/Accounts/{account.sid}/Messages.json"

        def page_uri(number: int, page_token: str | None = None) -> str:
            params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
            if page_token is not None:
                params.append(("PageToken", page_token))
            return f"{base}?{urlencode(params)}"

        start = page * page_size
        return {
            "end": start + max(len(selected) - 1, 0),
            "first_page_uri": page_uri(0),
            "messages": [message.to_json(now, state) for message, state in selected],
            "next_page_uri": page_uri(page + 1, f"PA{selected[-1][0].seq}") if has_more else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page, token),
        }

    @staticmethod
    def _account_json(account: _Account) -> dict[str, Any]:
        base = f"{API_PREFIX}/Accounts/{account.sid}"
        return {
            "auth_token": None,  # Twilio shows it; a stand-in that logs answers must never echo secrets
            "date_created": rfc2822(account.date_created),
            "date_updated": rfc2822(account.date_created),
            "friendly_name": account.friendly_name,
            "owner_account_sid": account.sid,
            "sid": account.sid,
            "status": "active",
            "subresource_uris": {k: f"{base}/{v}.json" for k, v in _ACCOUNT_SUBRESOURCES.items()},
            "type": "Full",
            "uri": f"{base}.json",
        }

    # ----- control routes (/_sim/) -----------------------------------------------------------------

    async def _sim_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "now": self.clock.now().isoformat(),
                "held": self._held,
                "faults": [dataclasses.asdict(f) for f in self._faults],
                "requests": len(self.requests),
                "messages": len(self.messages),
                "accounts": sorted(self._accounts),
            }
        )

    async def _sim_list_faults(self, request: web.Request) -> web.Response:
        return web.json_response([dataclasses.asdict(f) for f in self._faults])

    async def _sim_inject(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        try:
            fault = Fault(**data)
        except (TypeError, ValueError) as err:
            raise _bad_control(str(err)) from err
        self.inject(fault)
        return web.json_response(dataclasses.asdict(fault), status=201)

    async def _sim_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"faults": 0})

    async def _sim_release(self, request: web.Request) -> web.Response:
        return web.json_response({"released": self.release_held()})

    async def _sim_advance(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        seconds = data.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise _bad_control("seconds must be a number >= 0")
        now = self.clock.advance(timedelta(seconds=seconds))
        return web.json_response({"now": now.isoformat()})

    async def _sim_requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.to_json() for r in self.requests])

    async def _sim_clear_requests(self, request: web.Request) -> web.Response:
        self.requests.clear()
        return web.json_response({"requests": 0})

    async def _sim_messages(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        return web.json_response([m.to_json(now) for m in self.messages.values()])

    async def _sim_add_account(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        try:
            self.add_account(**data)
        except (TypeError, ValueError) as err:
            raise _bad_control(str(err)) from err
        return web.json_response({"sid": data["sid"]}, status=201)


def _drop_connection(request: web.Request) -> web.Response:
    # Closing the transport before answering makes the client see a disconnect with no status;
    # aiohttp then fails to write the response below and quietly drops it.
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


def _bad_control(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as err:
        raise _bad_control("the body must be a JSON object") from err
    if not isinstance(data, dict):
        raise _bad_control("the body must be a JSON object")
    return data


# ----- standalone ----------------------------------------------------------------------------------


async def _serve(host: str, port: int, account_sid: str, auth_token: str | None) -> None:
    sim = TwilioSimulator(SimClock(follow_real_time=True), host=host)
    token = auth_token or secrets.token_hex(16)
    sim.add_account(
        account_sid,
        token,
        friendly_name=SANDBOX_ACCOUNT.friendly_name,
        numbers=SANDBOX_ACCOUNT.numbers,
        services=(SANDBOX_ACCOUNT.service_sid,),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    url = await sim.start(port)
    try:
        print(url, flush=True)
        print(f"TWILIO_ACCOUNT_SID={account_sid}", flush=True)
        if auth_token is None:  # a generated token is only knowable from here
            print(f"TWILIO_AUTH_TOKEN={token}", flush=True)
        print(f"FROM={DEFAULT_FROM} MESSAGING_SERVICE_SID={SANDBOX_ACCOUNT.service_sid}", flush=True)
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator alone until SIGTERM/SIGINT; the first stdout line is its URL."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.twilio", description="Serve a Twilio Messages API simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="listen port (default: any free port)")
    parser.add_argument("--account-sid", default=SANDBOX_ACCOUNT.sid, help="the account to create")
    parser.add_argument("--auth-token", default=None, help="its auth token (default: random)")
    args = parser.parse_args(argv)
    if not _ACCOUNT_SID.fullmatch(args.account_sid):
        parser.error("--account-sid must be AC followed by 32 hex digits")
    asyncio.run(_serve(args.host, args.port, args.account_sid, args.auth_token))
    return 0


if __name__ == "__main__":
    sys.exit(main())

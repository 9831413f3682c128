"""Twilio's rules for the values we send: SIDs, labels, bodies, send-at times, dates, page sizes, senders.

Every check raises InputError with a sentence for the user and the logical field it concerns.
`now` is always passed in, so these functions are deterministic and easy to test.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal

from bot.core.errors import InputError, quoted
from bot.core.phone import PhoneNumber

__all__ = [
    "ACCOUNT_LABEL_PATTERN",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_WINDOW",
    "DELAY_PATTERN",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "MAX_BODY",
    "MAX_LABEL",
    "MAX_MEDIA_URLS",
    "MAX_PAGE_SIZE",
    "SEND_AT_EXAMPLE",
    "SID_EXAMPLES",
    "SID_PATTERNS",
    "BodyInfo",
    "Encoding",
    "SendWindow",
    "SidKind",
    "body_info",
    "check_account_label",
    "check_body",
    "check_media_urls",
    "check_send_at",
    "check_sid",
    "format_send_at",
    "parse_count",
    "parse_date",
    "parse_page_size",
    "parse_send_at",
    "schedule_service",
    "scheduled_list_problems",
    "sender_for",
    "sender_or_service",
]

# --- SIDs -----------------------------------------------------------------------------------------

SidKind = Literal["account", "message", "service", "api_key"]

_SID_PREFIXES: dict[str, tuple[str, ...]] = {
    "account": ("AC",),
    "message": ("SM", "MM"),
    "service": ("MG",),
    "api_key": ("SK",),
}
_SID_NAMES = {"account": "account SID", "message": "message SID", "service": "Messaging Service SID",
              "api_key": "API key SID"}  # fmt: skip
_HEX_EXAMPLE = "0123456789abcdef0123456789abcdef"

# Canonical SIDs: the prefix in capitals and 32 lowercase hex digits, as Twilio issues them.
SID_PATTERNS: dict[str, re.Pattern[str]] = {
    kind: re.compile(rf"(?:{'|'.join(prefixes)})[0-9a-f]{{32}}", re.ASCII)
    for kind, prefixes in _SID_PREFIXES.items()
}
SID_EXAMPLES: dict[str, str] = {kind: prefixes[0] + _HEX_EXAMPLE for kind, prefixes in _SID_PREFIXES.items()}
_ANY_SID = re.compile(r"([A-Za-z]{2})([0-9A-Fa-f]*)", re.ASCII)


def check_sid(text: str, kind: SidKind, *, field: str = "sid") -> str:
    """Return the SID in canonical form (upper-case prefix, lower-case hex) or raise InputError.

    Surrounding whitespace is ignored and the hex part is accepted in either case, because people
    paste SIDs from places that upper-case them; Twilio itself issues lower-case hex.
    """
    if kind not in _SID_PREFIXES:
        raise ValueError(f"unknown SID kind {kind!r}")
    prefixes = _SID_PREFIXES[kind]
    name = _SID_NAMES[kind]
    starts = " or ".join(prefixes)
    shape = f"{_a(name)} starts with {starts} followed by 32 hex characters, like {SID_EXAMPLES[kind]}"
    sid = text.strip()
    if not sid:
        raise InputError(f"The {name} is empty; {shape}.", field)
    match = _ANY_SID.fullmatch(sid)
    if match is None:
        raise InputError(f"{quoted(sid)} is not {_a(name)}; {shape}.", field)
    prefix, digits = match.group(1).upper(), match.group(2).lower()
    if prefix not in prefixes:
        # A SID of another kind is the likeliest mix-up (pasting the account SID for a message).
        other = next((k for k, p in _SID_PREFIXES.items() if prefix in p), None)
        if other is not None:
            raise InputError(f"{quoted(sid)} is {_a(_SID_NAMES[other])}, not {_a(name)}; {shape}.", field)
        raise InputError(f"{quoted(sid)} is not {_a(name)}; {shape}.", field)
    if len(digits) != 32:
        raise InputError(
            f"{quoted(sid)} has {len(digits)} hex characters after {prefix}, not 32; {shape}.", field
        )
    return prefix + digits


def _a(noun: str) -> str:
    """Prefix the right indefinite article."""
    return f"{'an' if noun[0] in 'aeiouAEIOU' else 'a'} {noun}"


# --- account labels -------------------------------------------------------------------------------

MAX_LABEL = 32
# Lower case once normalised: a label is a name people type in commands, where case should not matter.
ACCOUNT_LABEL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}", re.ASCII)
_LABEL_SHAPE = "1 to 32 letters, digits, - and _, starting with a letter or digit, like main or us-sales"


def check_account_label(text: str, *, field: str = "account") -> str:
    """Return the account label as it is stored (stripped, lower case), or raise InputError.

    The one rule for labels: the command grammar, the forms, the buttons, the CLI and the account
    operations all call it, so a label that parses can always be stored and found.
    """
    stripped = text.strip()
    label = stripped.lower()
    if not label:
        raise InputError("The account label is empty; use a short name like main or us-sales.", field)
    if len(label) > MAX_LABEL:
        raise InputError(
            f"The account label is {len(label)} characters long; use at most {MAX_LABEL}, "
            "like main or us-sales.",
            field,
        )
    if ACCOUNT_LABEL_PATTERN.fullmatch(label) is None:
        raise InputError(f"The account label {quoted(stripped)} may use only {_LABEL_SHAPE}.", field)
    return label


# --- message bodies -------------------------------------------------------------------------------

MAX_BODY = 1600
Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet (ESC left out: it is not a character anyone types) and the extension
# table, whose characters take two septets each (ESC + code).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION
_GSM_SINGLE, _GSM_MULTI = 160, 153  # septets; a multi-part message loses 7 septets to its header
_UCS_SINGLE, _UCS_MULTI = 70, 67  # UTF-16 code units
# Unicode's control characters (category Cc: U+0000-001F, U+007F-009F) but newline, return and tab.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class BodyInfo:
    """Length of a body in characters, the encoding it will travel in, and the SMS segments it takes."""

    chars: int
    encoding: Encoding
    segments: int


def body_info(text: str) -> BodyInfo:
    """Count characters, pick GSM-7 or UCS-2, and count segments (0 for an empty body).

    Segments are packed the way handsets do: a two-septet extension character or a UTF-16
    surrogate pair is never split across a segment boundary, so the count can exceed the naive
    division by one.
    """
    letters = set(text)  # one pass over the body; it is checked on every send's ack
    if letters <= _GSM7:
        encoding: Encoding = "GSM-7"
        single, multi = _GSM_SINGLE, _GSM_MULTI
        wide = GSM7_EXTENSION  # two septets each
    else:
        encoding = "UCS-2"
        single, multi = _UCS_SINGLE, _UCS_MULTI
        # Outside the BMP: a surrogate pair, two UTF-16 units.
        wide = frozenset(ch for ch in letters if ch > "\uffff")
    if letters.isdisjoint(wide):
        segments = _even_segments(len(text), single, multi)
    else:
        segments = _segments([2 if ch in wide else 1 for ch in text], single, multi)
    return BodyInfo(chars=len(text), encoding=encoding, segments=segments)


def _even_segments(total: int, single: int, multi: int) -> int:
    """Segments for `total` characters of one unit each (no character can straddle a boundary)."""
    if total == 0:
        return 0
    return 1 if total <= single else -(-total // multi)


def _segments(units: list[int], single: int, multi: int) -> int:
    """Pack characters of the given widths into segments without splitting any character."""
    total = sum(units)
    if total <= single:
        return _even_segments(total, single, multi)
    count, used = 1, 0
    for width in units:
        if used + width > multi:
            count, used = count + 1, 0
        used += width
    return count


def check_body(text: str) -> BodyInfo:
    """Return BodyInfo for a sendable body (1–1600 characters) or raise InputError(field="body").

    Newlines, carriage returns and tabs are fine; other control characters are refused because
    handsets show them as boxes or drop the message.
    """
    if not text.strip():
        raise InputError("The message body is empty; type the text to send after the number.", "body")
    found = _CONTROL.search(text)
    if found is not None:
        bad = found.group()
        raise InputError(
            f"The message body contains the control character U+{ord(bad):04X}; remove it and send again.",
            "body",
        )
    if len(text) > MAX_BODY:
        over = len(text) - MAX_BODY
        raise InputError(
            f"The message body is {len(text):,} characters, {over:,} over Twilio's limit of {MAX_BODY:,}; "
            "shorten it or send it as two messages.",
            "body",
        )
    return body_info(text)


# --- send-at --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendWindow:
    """How far ahead of now a send time may be: from now + min_ahead to now + max_ahead, both included."""

    min_ahead: timedelta
    max_ahead: timedelta

    def describe(self) -> str:
        """The window in words, for hints and help: "15 minutes to 35 days"."""
        return f"{_duration(self.min_ahead)} to {_duration(self.max_ahead)}"


# Twilio's own window; a caller passes another only for an account with older limits.
DEFAULT_WINDOW = SendWindow(min_ahead=timedelta(minutes=15), max_ahead=timedelta(days=35))
SEND_AT_EXAMPLE = "2026-12-01T15:00:00Z"
_FORMS = f"use a UTC time like {SEND_AT_EXAMPLE} or a delay like in 30m, in 2h or in 3d"
# The longest send-at text worth parsing; anything longer is refused before the regexes run.
_MAX_SEND_AT_INPUT = 64

_RELATIVE = re.compile(r"in\s*([0-9]+)\s*([mhd])", re.ASCII | re.IGNORECASE)
# Any delay a person might write, accepted or not: it finds where WHEN ends in command text and
# gives a precise sentence for "in 30 minutes" instead of "not a send time".
DELAY_PATTERN = re.compile(
    r"in\s*[0-9]+\s*(?:m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?|s|secs?|seconds?)\.?",
    re.ASCII | re.IGNORECASE,
)
_ABSOLUTE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[T ]\s*"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:[.,][0-9]+)?)?"
    r"\s*(?P<zone>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.ASCII | re.IGNORECASE,
)
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}


def parse_send_at(text: str, *, now: datetime, window: SendWindow = DEFAULT_WINDOW) -> datetime:
    """Parse `2026-12-01T15:00:00Z` (any explicit offset, converted to UTC) or `in 30m|2h|3d`.

    Returns an aware UTC datetime with whole seconds, inside the window;
    raises InputError(field="send_at") otherwise. Times without a zone are refused rather than
    guessed, because a wrong guess sends the message hours early or late.
    """
    _require_aware(now, "now")
    raw = text.strip()
    if not raw:
        raise InputError(f"The send time is empty; {_FORMS}.", "send_at")
    if len(raw) > _MAX_SEND_AT_INPUT:
        raise InputError(f"The send time is {len(raw)} characters long; {_FORMS}.", "send_at")
    relative = _RELATIVE.fullmatch(raw)
    if relative:
        return _relative(raw, relative, now=now, window=window)
    if DELAY_PATTERN.fullmatch(raw):
        raise InputError(
            f"{quoted(raw)} is not a delay this command understands; write it as in 30m, in 2h or in 3d.",
            "send_at",
        )
    absolute = _ABSOLUTE.fullmatch(raw)
    if absolute is None:
        raise InputError(f"{quoted(raw)} is not a send time; {_FORMS}.", "send_at")
    when = _absolute(raw, absolute).replace(microsecond=0)
    check_send_at(when, now=now, window=window)
    return when


def _relative(raw: str, match: re.Match[str], *, now: datetime, window: SendWindow) -> datetime:
    """Turn `in N{m,h,d}` into a whole-second UTC time inside the window."""
    digits, unit = match.group(1), match.group(2).lower()
    # Bound the number before building a timedelta: huge values overflow datetime arithmetic.
    minutes = int(digits[-12:]) * _UNIT_MINUTES[unit] if len(digits) <= 12 else math.inf
    if minutes > window.max_ahead / timedelta(minutes=1) + 1:
        latest = format_send_at(_floor_second(now + window.max_ahead))
        raise InputError(
            f"{quoted(raw)} is too far ahead; Twilio schedules at most {_duration(window.max_ahead)} ahead, "
            f"so the latest allowed time is {latest}.",
            "send_at",
        )
    exact = now.astimezone(UTC) + timedelta(minutes=minutes)
    check_send_at(exact, now=now, window=window)
    when = _floor_second(exact)
    # Dropping microseconds can land a hair before the minimum ("in 15m"); round up instead.
    if when < now + window.min_ahead:
        when += timedelta(seconds=1)
    return when


def _absolute(raw: str, match: re.Match[str]) -> datetime:
    """Build an aware UTC datetime from a matched ISO 8601 time with an explicit zone."""
    zone = match.group("zone")
    if zone is None:
        raise InputError(f"{quoted(raw)} has no time zone; add Z for UTC, like {SEND_AT_EXAMPLE}.", "send_at")
    try:
        day = date.fromisoformat(match.group("date"))
        offset = _offset(zone)
        moment = datetime(
            day.year,
            day.month,
            day.day,
            int(match.group("hour")),
            int(match.group("minute")),
            int(match.group("second") or 0),
            tzinfo=offset,
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InputError(f"{quoted(raw)} is not a real date and time; {_FORMS}.", "send_at") from None


def _offset(zone: str) -> timezone:
    """Parse `Z`, `+HH`, `+HHMM` or `+HH:MM`; ValueError when out of range."""
    if zone.upper() == "Z":
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(zone)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def check_send_at(dt: datetime, *, now: datetime, window: SendWindow = DEFAULT_WINDOW) -> None:
    """Raise InputError(field="send_at") unless now + window.min_ahead <= dt <= now + window.max_ahead.

    Both datetimes must be aware (ValueError otherwise): comparing a naive time would silently
    mean whatever zone the server runs in.
    """
    _require_aware(dt, "dt")
    _require_aware(now, "now")
    shown = format_send_at(dt)
    min_ahead, max_ahead = window.min_ahead, window.max_ahead
    if dt < now:
        raise InputError(
            f"The send time {shown} is in the past; pick a time at least {_duration(min_ahead)} from now.",
            "send_at",
        )
    if dt < now + min_ahead:
        earliest = format_send_at(_ceil_second(now + min_ahead))
        raise InputError(
            f"The send time {shown} is too soon; Twilio schedules messages at least "
            f"{_duration(min_ahead)} from now, so pick {earliest} or later.",
            "send_at",
        )
    if dt > now + max_ahead:
        latest = format_send_at(_floor_second(now + max_ahead))
        raise InputError(
            f"The send time {shown} is too far ahead; Twilio schedules at most {_duration(max_ahead)} "
            f"ahead, so the latest allowed time is {latest}.",
            "send_at",
        )


def format_send_at(dt: datetime) -> str:
    """Format an aware datetime as Twilio's `YYYY-MM-DDTHH:MM:SSZ` in UTC; ValueError if naive."""
    _require_aware(dt, "dt")
    utc = dt.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"


def _require_aware(dt: datetime, name: str) -> None:
    """Refuse naive datetimes: every time here is an instant, and naive ones have no instant."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {dt!r}")


def _floor_second(dt: datetime) -> datetime:
    """Drop microseconds, in UTC."""
    return dt.astimezone(UTC).replace(microsecond=0)


def _ceil_second(dt: datetime) -> datetime:
    """Round up to the next whole second, in UTC."""
    floor = _floor_second(dt)
    return floor if floor == dt else floor + timedelta(seconds=1)


def _duration(delta: timedelta) -> str:
    """Say a duration the way a person would: "15 minutes", "35 days", "1 hour"."""
    seconds = int(delta.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


# --- dates and counts -----------------------------------------------------------------------------

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def parse_date(text: str, *, field: str = "date") -> date:
    """Parse a strict `YYYY-MM-DD` date or raise InputError."""
    raw = text.strip()
    if not raw:
        raise InputError("The date is empty; write it as YYYY-MM-DD, like 2026-12-01.", field)
    if _DATE.fullmatch(raw) is None:
        raise InputError(f"{quoted(raw)} is not a date; write it as YYYY-MM-DD, like 2026-12-01.", field)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InputError(
            f"{quoted(raw)} is not a real date; write it as YYYY-MM-DD, like 2026-12-01.", field
        ) from None


def parse_count(value: str | int, *, low: int, high: int, field: str, name: str) -> int:
    """Parse a whole number in [low, high] from text or an int, or raise InputError naming `name`."""
    if isinstance(value, bool):
        raise InputError(f"The {name} must be a whole number from {low} to {high}.", field)
    if isinstance(value, int):
        number = value
    else:
        raw = value.strip()
        if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
            raise InputError(
                f"The {name} {quoted(raw)} is not a whole number; use a number from {low} to {high}.", field
            )
        number = int(raw)
    if not low <= number <= high:
        raise InputError(f"The {name} must be from {low} to {high}, not {number}.", field)
    return number


def parse_page_size(value: str | int, *, field: str = "limit") -> int:
    """Parse a Twilio page size (1–1000) or raise InputError."""
    return parse_count(value, low=1, high=MAX_PAGE_SIZE, field=field, name="limit")


# --- who sends, and what a list can filter ---------------------------------------------------------


def sender_for(to: PhoneNumber, sender: PhoneNumber | None, *, field: str = "to") -> PhoneNumber | None:
    """The sender as Twilio needs it for `to`, or InputError: both ends of a message are on one channel.

    A WhatsApp recipient gets the sender as `whatsapp:` too; an SMS recipient cannot have a WhatsApp sender.
    """
    if sender is None:
        return None
    if to.whatsapp and not sender.whatsapp:
        return PhoneNumber(sender.e164, whatsapp=True)
    if sender.whatsapp and not to.whatsapp:
        raise InputError(
            "A WhatsApp sender can only message a WhatsApp number; "
            f"write the To number as whatsapp:{to.e164}.",
            field,
        )
    return sender


def sender_or_service(
    label: str, *, sender: str | None, default_from: str | None, default_service: str | None
) -> tuple[str | None, str | None]:
    """`(From, MessagingServiceSid)` for a send, or InputError(field="from") when there is neither.

    The sender given wins; otherwise the account's default From number, else its default Messaging Service.
    """
    chosen = sender or default_from
    if chosen:
        return chosen, None
    if default_service:
        return None, default_service
    raise InputError(
        f"The account {label} has no default From number or Messaging Service, so say which number sends "
        "this (the From field, or --from +1… in a command), or ask an admin to set a default with "
        "/twilio setup.",
        "from",
    )


def schedule_service(label: str, *, service: str | None, default_service: str | None) -> str:
    """The Messaging Service a schedule goes through, or InputError(field="service") when there is none.

    Without a Messaging Service Twilio silently sends at once instead of scheduling.
    """
    chosen = service or default_service
    if not chosen:
        raise InputError(
            f"The account {label} has no default Messaging Service, and Twilio schedules only through one: "
            "give its SID (MG…, the Messaging Service field, or --service in a command), or ask an admin to "
            "set a default with /twilio setup.",
            "service",
        )
    return chosen


_FILTER_NAMES = {"to": "To number", "from": "From number", "date": "date"}


def scheduled_list_problems(*, to: bool, from_: bool, date: bool) -> list[InputError]:
    """One InputError per filter given to a list of scheduled messages, which Twilio lists only unfiltered."""
    given = [name for name, on in (("to", to), ("from", from_), ("date", date)) if on]
    return [
        InputError(
            f"A list of scheduled messages cannot be filtered by {_FILTER_NAMES[name]}, because Twilio lists "
            "scheduled messages only without filters; leave it out.",
            name,
        )
        for name in given
    ]


MAX_MEDIA_URLS = 10
_MEDIA_URL = re.compile(r"https?://[^\s/?#@]+(?:[/?#]\S*)?", re.ASCII | re.IGNORECASE)


def check_media_urls(urls: list[str] | tuple[str, ...], *, field: str = "media") -> tuple[str, ...]:
    """Up to 10 public http(s) links for an MMS, each as Twilio will fetch it; InputError otherwise."""
    if len(urls) > MAX_MEDIA_URLS:
        raise InputError(f"A message takes at most {MAX_MEDIA_URLS} media links, not {len(urls)}.", field)
    for url in urls:
        if len(url) > 2000 or not _MEDIA_URL.fullmatch(url):
            raise InputError(
                f"{quoted(url)} is not a media link; give a full http(s) address like "
                "https://example.com/photo.jpg.",
                field,
            )
    return tuple(urls)

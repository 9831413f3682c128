"""The Messages API: create (send or schedule), fetch, list, cancel, redact and delete messages.

A message's status is derived from the clock whenever it is read (no background tasks).
"""

from __future__ import annotations

import re
import secrets
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlencode

from multidict import MultiDictProxy

from bot.sandbox.twilio.accounts import MAGIC_FROM, _Account
from bot.sandbox.twilio.errors import TwilioApiError
from bot.sandbox.twilio.formats import (
    _E164,
    _MESSAGES_PATH,
    _WHATSAPP,
    API_PREFIX,
    API_VERSION,
    _strip_channel,
    rfc2822,
    segment_count,
)
from bot.sandbox.twilio.recording import RecordedRequest
from bot.sandbox.twilio.state import SimState

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

_DATE_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}")
_LIST_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")


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
    direction: str = "outbound-api"  # "inbound" for texts from a phone, "outbound-reply" for auto-replies

    def timeline(self) -> list[tuple[datetime, str]]:
        """Every status the message takes and when, first to last (a cancel cuts a schedule short)."""
        if self.direction == "inbound":
            return [(self.date_created, "received")]
        origin = self.send_at or self.date_created
        if self.send_at is not None:
            if self.canceled_at is not None:
                return [(self.date_created, "scheduled"), (self.canceled_at, "canceled")]
            steps = [(self.date_created, "scheduled"), (origin, "queued")]
        elif self.messaging_service_sid is not None:
            steps = [(origin, "accepted"), (origin + SERVICE_QUEUED_AFTER, "queued")]
        else:
            steps = [(origin, "queued")]
        final = "undelivered" if _strip_channel(self.to).endswith(UNDELIVERED_SUFFIX) else "delivered"
        return [*steps, (origin + SENT_AFTER, "sent"), (origin + DELIVERED_AFTER, final)]

    def state(self, now: datetime) -> MessageState:
        """Status and timestamps at `now`."""
        steps = self.timeline()
        changed, status = steps[0]
        for at, name in steps[1:]:
            if at <= now:
                changed, status = at, name
        if status in ("scheduled", "canceled"):
            return self._state(status, None, changed)
        if self.direction == "inbound":
            return self._state(status, self.date_created, changed)
        sent_at = (self.send_at or self.date_created) + SENT_AFTER
        return self._state(status, sent_at if now >= sent_at else None, changed)

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
            "direction": self.direction,
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


def _form_value(form: MultiDictProxy[Any], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else None


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


class MessagesApi(SimState):
    """The ``Messages.json`` and ``Messages/{sid}.json`` resources of an account."""

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
        if (account.sid, _strip_channel(sender), to_number) in self._opted_out:
            raise TwilioApiError(21610)
        return self._keep(
            account,
            media=bool(media),
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

    def _keep(self, account: _Account, *, media: bool, **fields: Any) -> StoredMessage:
        """Store a new message of `account` under a fresh SID: MM… with media, SM… without."""
        message = StoredMessage(
            sid=("MM" if media else "SM") + secrets.token_hex(16),
            account_sid=account.sid,
            seq=next(self._seq),
            **fields,
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

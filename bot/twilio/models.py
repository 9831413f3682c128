"""Typed views of Twilio's answers: Message, MessagePage, AccountInfo, and the Credentials to ask with.

Parsing is forgiving where Twilio is loose (fields missing or null, numbers sent as strings, fields we
do not know) and strict where a wrong value would mislead: a date that is not RFC 2822, a count that is not
a number or an answer that is not an object raises TwilioError with a sentence, never KeyError.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime

from bot.twilio.errors import TwilioError

__all__ = ["AccountInfo", "Credentials", "IncomingNumber", "Message", "MessagePage"]

_WHOLE = re.compile(r"\s*-?[0-9]{1,18}\s*")


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to one Twilio account.

    `secret` is the auth token, or the API key's secret when `api_key_sid` is set; Basic auth then uses
    the key SID as the user name. Request paths always use `account_sid`. `repr()` never shows the secret.
    """

    account_sid: str
    secret: str = field(repr=False)
    api_key_sid: str | None = None

    @property
    def username(self) -> str:
        """The Basic auth user name: the API key SID when there is one, else the account SID."""
        return self.api_key_sid or self.account_sid


@dataclass(frozen=True)
class Message:
    """One Twilio Message resource. Text fields Twilio left null are empty strings; the rest are None."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    status: str
    direction: str | None
    num_segments: int | None
    num_media: int | None
    price: Decimal | None
    price_unit: str | None
    error_code: int | None
    error_message: str | None
    messaging_service_sid: str | None
    date_created: datetime | None
    date_sent: datetime | None
    date_updated: datetime | None
    uri: str | None

    @classmethod
    def from_json(cls, data: object) -> Message:
        """Build a Message from Twilio's JSON (already decoded); TwilioError if it is not a message."""
        obj = _object(data, "message")
        return cls(
            sid=_required_text(obj, "sid", "message"),
            account_sid=_text(obj, "account_sid") or "",
            to=_text(obj, "to") or "",
            from_=_text(obj, "from"),
            body=_text(obj, "body") or "",
            status=_text(obj, "status") or "unknown",
            direction=_text(obj, "direction"),
            num_segments=_integer(obj, "num_segments"),
            num_media=_integer(obj, "num_media"),
            price=_decimal(obj, "price"),
            price_unit=_text(obj, "price_unit"),
            error_code=_integer(obj, "error_code"),
            error_message=_text(obj, "error_message"),
            messaging_service_sid=_text(obj, "messaging_service_sid"),
            date_created=_date(obj, "date_created"),
            date_sent=_date(obj, "date_sent"),
            date_updated=_date(obj, "date_updated"),
            uri=_text(obj, "uri"),
        )


@dataclass(frozen=True)
class MessagePage:
    """One page of a message list; `next_page_uri` is Twilio's relative link to the next page, or None."""

    messages: tuple[Message, ...]
    next_page_uri: str | None
    page: int
    page_size: int

    @classmethod
    def from_json(cls, data: object) -> MessagePage:
        """Build a page from Twilio's list answer; TwilioError if it has no list of messages."""
        obj = _object(data, "message list")
        items = obj.get("messages")
        if not isinstance(items, list):
            raise _malformed("the message list has no 'messages' array")
        messages = tuple(Message.from_json(item) for item in items)
        page = _integer(obj, "page")
        page_size = _integer(obj, "page_size")
        return cls(
            messages=messages,
            next_page_uri=_text(obj, "next_page_uri") or None,
            page=page if page is not None else 0,
            page_size=page_size if page_size is not None else len(messages),
        )


@dataclass(frozen=True)
class AccountInfo:
    """What verify_account learns about an account: its name, status (`active`…) and type (`Trial`/`Full`)."""

    sid: str
    friendly_name: str
    status: str
    type: str | None

    @classmethod
    def from_json(cls, data: object) -> AccountInfo:
        """Build AccountInfo from Twilio's account JSON; TwilioError if it is not an account.

        Twilio's account answer may include the auth token; it is deliberately not kept.
        """
        obj = _object(data, "account")
        return cls(
            sid=_required_text(obj, "sid", "account"),
            friendly_name=_text(obj, "friendly_name") or "",
            status=_text(obj, "status") or "unknown",
            type=_text(obj, "type"),
        )


@dataclass(frozen=True)
class IncomingNumber:
    """One of an account's numbers (IncomingPhoneNumber): where Twilio sends the texts it receives.

    `service_sid` is set when the number belongs to a Messaging Service (Twilio shows the service's MG SID
    as its `sms_application_sid`): its texts then go to the service's inbound URL, not to `sms_url`.
    """

    sid: str
    phone_number: str
    sms_url: str | None
    sms_method: str
    service_sid: str | None

    @classmethod
    def from_json(cls, data: object) -> IncomingNumber:
        """Build from Twilio's IncomingPhoneNumber JSON; TwilioError if it is not one."""
        obj = _object(data, "phone number")
        app = _text(obj, "sms_application_sid") or ""
        return cls(
            sid=_required_text(obj, "sid", "phone number"),
            phone_number=_required_text(obj, "phone_number", "phone number"),
            sms_url=_text(obj, "sms_url") or None,
            sms_method=(_text(obj, "sms_method") or "POST").upper(),
            service_sid=app if app.startswith("MG") else None,
        )

    @classmethod
    def list_from_json(cls, data: object) -> list[IncomingNumber]:
        """The numbers of one IncomingPhoneNumbers page."""
        obj = _object(data, "phone number list")
        items = obj.get("incoming_phone_numbers")
        if not isinstance(items, list):
            raise _malformed("the phone number list has no 'incoming_phone_numbers'")
        return [cls.from_json(item) for item in items]


def _malformed(what: str) -> TwilioError:
    return TwilioError(
        f"malformed answer: {what}",
        hint=f"Twilio's answer could not be understood: {what}. Try again, and tell an admin if it persists.",
    )


def _object(data: object, what: str) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise _malformed(f"the {what} is not a JSON object")
    return data


def _text(obj: Mapping[str, object], key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _malformed(f"'{key}' is not text")


def _required_text(obj: Mapping[str, object], key: str, what: str) -> str:
    value = _text(obj, key)
    if not value:
        raise _malformed(f"the {what} has no '{key}'")
    return value


def _present(obj: Mapping[str, object], key: str) -> object:
    """The value at `key`, or None where Twilio leaves it out, sends null or sends an empty string."""
    value = obj.get(key)
    return None if value == "" else value


def _integer(obj: Mapping[str, object], key: str) -> int | None:
    value = _present(obj, key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        return int(value)
    raise _malformed(f"'{key}' is not a whole number")


def _decimal(obj: Mapping[str, object], key: str) -> Decimal | None:
    value = _present(obj, key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _malformed(f"'{key}' is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _malformed(f"'{key}' is not a number") from None
    if not number.is_finite():
        raise _malformed(f"'{key}' is not a number")
    return number


def _date(obj: Mapping[str, object], key: str) -> datetime | None:
    value = _present(obj, key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _malformed(f"'{key}' is not an RFC 2822 date")
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise _malformed(f"'{key}' is not an RFC 2822 date") from None
    # "-0000" (no zone information) gives a naive datetime; Twilio's dates are GMT.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)

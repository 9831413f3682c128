"""IncomingPhoneNumbers (where a number sends its incoming texts) and the Messaging Services they belong to.

Every number an account has is an IncomingPhoneNumber (``PN…``, shaped as in Twilio's v2010 spec):
``GET …/IncomingPhoneNumbers.json`` lists them (``PhoneNumber`` matches part of the number, ``*`` any
digit; ``FriendlyName`` exactly; ``PageSize``/``Page``), ``GET``/``POST …/IncomingPhoneNumbers/PN….json``
reads and updates one (``SmsUrl``, ``SmsMethod``, ``SmsFallbackUrl``, ``SmsFallbackMethod``,
``FriendlyName``, ``StatusCallback``; an empty value clears a URL). A WhatsApp sender is the same number:
texts to ``whatsapp:+1555…`` go where ``+1555…`` sends its texts.

A number in a Messaging Service (``add_account(service_numbers={number: "MG…"})``; the sandbox account's
`SERVICE_NUMBER`) behaves as on Twilio: its inbound texts go to the service's ``inbound_request_url``, and
its own ``sms_url`` is ignored (it can still be set, and is shown) unless the service has
``use_inbound_webhook_on_number``. A client can tell in two ways: the number's ``sms_application_sid`` is
the service's ``MG…`` SID, as Twilio shows it, and the number is listed by the Messaging API's
``GET /v1/Services/MG…/PhoneNumbers`` (on Twilio that lives on messaging.twilio.com; here on the same
server). ``GET``/``POST /v1/Services/MG…`` reads and updates the service (``InboundRequestUrl``,
``InboundMethod``, ``UseInboundWebhookOnNumber``, ``FriendlyName``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from multidict import MultiDictProxy

from bot.sandbox.twilio.accounts import Accounts, _Account
from bot.sandbox.twilio.errors import TwilioApiError
from bot.sandbox.twilio.formats import API_PREFIX, API_VERSION, _strip_channel, rfc2822

_NUMBERS_PATH = re.compile(rf"{API_PREFIX}/Accounts/(?P<account>[^/]+)/IncomingPhoneNumbers\.json")
_NUMBER_PATH = re.compile(
    rf"{API_PREFIX}/Accounts/(?P<account>[^/]+)/IncomingPhoneNumbers/(?P<sid>[^/]+)\.json"
)
_SERVICE_PATH = re.compile(r"/v1/Services/(?P<service>[^/]+)")
_SERVICE_NUMBERS_PATH = re.compile(r"/v1/Services/(?P<service>[^/]+)/PhoneNumbers")
_METHODS: Final = ("GET", "POST")
_TRUE: Final = frozenset({"true", "True", "1"})
_FALSE: Final = frozenset({"false", "False", "0"})


@dataclass
class _Resource:
    """What both kinds of record have, as Twilio's resources do: SID, account, name and times."""

    sid: str
    account_sid: str
    friendly_name: str
    date_created: datetime
    date_updated: datetime


@dataclass
class _PhoneNumber(_Resource):
    phone_number: str
    sms_url: str | None = None
    sms_method: str = "POST"
    sms_fallback_url: str | None = None
    sms_fallback_method: str = "POST"
    status_callback: str | None = None


@dataclass
class _Service(_Resource):
    inbound_request_url: str | None = None
    inbound_method: str = "POST"
    use_inbound_webhook_on_number: bool = False


@dataclass(frozen=True)
class InboundTarget:
    """Where Twilio sends a text that arrives at one of our numbers (url None: nowhere)."""

    url: str | None
    method: str
    service_sid: str | None  # set when the number belongs to a Messaging Service


def _friendly(number: str) -> str:
    if number.startswith("+1") and len(number) == 12:
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _url_value(name: str, value: str) -> str | None:
    if value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TwilioApiError(20001, f"{name} must be an http or https URL, not {value!r}")
    return value


def _method_value(name: str, value: str) -> str:
    if value.upper() not in _METHODS:
        raise TwilioApiError(20001, f"{name} must be GET or POST, not {value!r}")
    return value.upper()


def _flag_value(name: str, value: str) -> bool:
    if value not in _TRUE | _FALSE:
        raise TwilioApiError(20001, f"{name} must be true or false")
    return value in _TRUE


# The form parameters an update of a number or a Messaging Service takes: (name, attribute, reader).
_Updates = tuple[tuple[str, str, Callable[[str, str], object]], ...]
_NUMBER_UPDATES: Final[_Updates] = (
    ("SmsUrl", "sms_url", _url_value),
    ("SmsFallbackUrl", "sms_fallback_url", _url_value),
    ("StatusCallback", "status_callback", _url_value),
    ("SmsMethod", "sms_method", _method_value),
    ("SmsFallbackMethod", "sms_fallback_method", _method_value),
)
_SERVICE_UPDATES: Final[_Updates] = (
    ("InboundRequestUrl", "inbound_request_url", _url_value),
    ("InboundMethod", "inbound_method", _method_value),
    ("UseInboundWebhookOnNumber", "use_inbound_webhook_on_number", _flag_value),
)


class PhoneNumbers(Accounts):
    """``IncomingPhoneNumbers``, the Messaging Services' inbound settings, and where inbound texts go."""

    def phone_number(self, number: str) -> dict[str, Any]:
        """The IncomingPhoneNumber JSON of one of our numbers (a ``whatsapp:`` prefix is ignored)."""
        account = self._account_owning(number)
        if account is None:
            raise LookupError(f"no account has the number {number}")
        return self._number_json(self._number_record(account, _strip_channel(number)))

    def set_sms_url(self, number: str, url: str | None, method: str = "POST") -> None:
        """Point one of our numbers' incoming texts at `url` (what a POST of `SmsUrl` does)."""
        account = self._account_owning(number)
        if account is None:
            raise LookupError(f"no account has the number {number}")
        record = self._number_record(account, _strip_channel(number))
        record.sms_url = _url_value("SmsUrl", url or "")
        record.sms_method = _method_value("SmsMethod", method)
        record.date_updated = self.clock.now()

    def set_service_inbound(
        self, service_sid: str, url: str | None, *, method: str = "POST", use_number_webhook: bool = False
    ) -> None:
        """Set a Messaging Service's inbound request URL (and whether its numbers' own URLs win)."""
        account = next((a for a in self._accounts.values() if service_sid in a.services), None)
        if account is None:
            raise LookupError(f"no account has the Messaging Service {service_sid}")
        service = self._service_record(account, service_sid)
        service.inbound_request_url = _url_value("InboundRequestUrl", url or "")
        service.inbound_method = _method_value("InboundMethod", method)
        service.use_inbound_webhook_on_number = use_number_webhook
        service.date_updated = self.clock.now()

    def _inbound_target(self, account: _Account, number: str) -> InboundTarget:
        """Where a text to our `number` goes: the service's URL for a service number, else the number's."""
        record = self._number_record(account, _strip_channel(number))
        service_sid = account.service_numbers.get(record.phone_number)
        if service_sid is not None:
            service = self._service_record(account, service_sid)
            if not service.use_inbound_webhook_on_number:
                return InboundTarget(service.inbound_request_url, service.inbound_method, service_sid)
        return InboundTarget(record.sms_url, record.sms_method, service_sid)

    # ----- records ---------------------------------------------------------------------------------

    def _number_record(self, account: _Account, number: str) -> _PhoneNumber:
        sid = "PN" + hashlib.sha256(f"{account.sid}{number}".encode()).hexdigest()[:32]
        record = self._phone_numbers.get(sid)
        if record is None:
            now = self.clock.now()
            record = _PhoneNumber(sid, account.sid, _friendly(number), now, now, phone_number=number)
            self._phone_numbers[sid] = record
        return record

    def _numbers_of(self, account: _Account) -> list[_PhoneNumber]:
        return [self._number_record(account, n) for n in account.numbers]

    def _service_record(self, account: _Account, service_sid: str) -> _Service:
        record = self._services.get(service_sid)
        if record is None:
            now = self.clock.now()
            record = _Service(service_sid, account.sid, f"Service {service_sid[-4:]}", now, now)
            self._services[service_sid] = record
        return record

    # ----- the API ---------------------------------------------------------------------------------

    def _phone_numbers_route(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        form: MultiDictProxy[Any],
        credentials: tuple[str, str] | None,
    ) -> dict[str, Any] | None:
        """The JSON answer for a phone-number or service route; None when `path` is none of them."""
        if match := _NUMBERS_PATH.fullmatch(path):
            account = self._authenticate(credentials, match["account"])
            if method != "GET":
                raise TwilioApiError(20004, f"Method {method} not allowed on {path}")
            return self._list_numbers(account, query)
        if match := _NUMBER_PATH.fullmatch(path):
            account = self._authenticate(credentials, match["account"])
            record = self._phone_numbers.get(match["sid"])
            if (
                record is None
                or record.account_sid != account.sid
                or record.phone_number not in account.numbers
            ):
                raise TwilioApiError(20404, f"The requested resource {path} was not found")
            if method == "POST":
                self._apply_form(record, form, _NUMBER_UPDATES)
            elif method != "GET":
                raise TwilioApiError(20004, f"Method {method} not allowed on {path}")
            return self._number_json(record)
        service_match = _SERVICE_NUMBERS_PATH.fullmatch(path) or _SERVICE_PATH.fullmatch(path)
        if service_match is None:
            return None
        account = self._authenticate_any(credentials)
        if service_match["service"] not in account.services:
            raise TwilioApiError(20404, f"The requested resource {path} was not found")
        service = self._service_record(account, service_match["service"])
        if method == "POST" and service_match.re is _SERVICE_PATH:
            self._apply_form(service, form, _SERVICE_UPDATES)
        elif method != "GET":
            raise TwilioApiError(20004, f"Method {method} not allowed on {path}")
        if service_match.re is _SERVICE_PATH:
            return self._service_json(service)
        return self._service_numbers_json(account, service)

    def _list_numbers(self, account: _Account, query: Mapping[str, str]) -> dict[str, Any]:
        wanted = query.get("PhoneNumber") or None
        name = query.get("FriendlyName") or None
        pattern = re.compile(r"\d".join(map(re.escape, wanted.split("*")))) if wanted else None
        found = [
            r
            for r in self._numbers_of(account)
            if (pattern is None or pattern.search(r.phone_number)) and name in (None, r.friendly_name)
        ]
        try:
            size = int(query.get("PageSize") or 50)
            page = int(query.get("Page") or 0)
        except ValueError:
            raise TwilioApiError(20001, "PageSize and Page must be integers") from None
        if not 1 <= size <= 1000 or page < 0:
            raise TwilioApiError(20001, "PageSize must be between 1 and 1000 and Page at least 0")
        base = f"{API_PREFIX}/Accounts/{account.sid}/IncomingPhoneNumbers.json"
        filters = [(k, v) for k, v in (("PhoneNumber", wanted), ("FriendlyName", name)) if v]

        def uri(number: int) -> str:
            return f"{base}?{urlencode([*filters, ('PageSize', str(size)), ('Page', str(number))])}"

        chunk = found[page * size : (page + 1) * size]
        return {
            "end": page * size + max(len(chunk) - 1, 0),
            "first_page_uri": uri(0),
            "incoming_phone_numbers": [self._number_json(r) for r in chunk],
            "next_page_uri": uri(page + 1) if len(found) > (page + 1) * size else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": page * size,
            "uri": uri(page),
        }

    def _apply_form(self, record: _Resource, form: MultiDictProxy[Any], fields: _Updates) -> None:
        """Check and set each of `fields` the form names, in order, then FriendlyName."""
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        for name, attribute, read in fields:
            if name in values:
                setattr(record, attribute, read(name, values[name]))
        if values.get("FriendlyName"):
            record.friendly_name = values["FriendlyName"][:64]
        record.date_updated = self.clock.now()

    # ----- shapes ----------------------------------------------------------------------------------

    def _number_json(self, record: _PhoneNumber) -> dict[str, Any]:
        account = self._accounts[record.account_sid]
        return {
            "account_sid": record.account_sid,
            "address_sid": None,
            "address_requirements": "none",
            "api_version": API_VERSION,
            "beta": False,
            "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": rfc2822(record.date_created),
            "date_updated": rfc2822(record.date_updated),
            "friendly_name": record.friendly_name,
            "identity_sid": None,
            "phone_number": record.phone_number,
            "origin": "twilio",
            "sid": record.sid,
            "sms_application_sid": account.service_numbers.get(record.phone_number),
            "sms_fallback_method": record.sms_fallback_method,
            "sms_fallback_url": record.sms_fallback_url or "",
            "sms_method": record.sms_method,
            "sms_url": record.sms_url or "",
            "status_callback": record.status_callback or "",
            "status_callback_method": "POST",
            "trunk_sid": None,
            "uri": f"{API_PREFIX}/Accounts/{record.account_sid}/IncomingPhoneNumbers/{record.sid}.json",
            "voice_receive_mode": "voice",
            "voice_application_sid": None,
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": "",
            "voice_method": "POST",
            "voice_url": "",
            "emergency_status": "Inactive",
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "bundle_sid": None,
            "status": "in-use",
            "type": "local",
        }

    def _service_json(self, service: _Service) -> dict[str, Any]:
        url = f"{self.url}/v1/Services/{service.sid}"
        links = ("phone_numbers", "short_codes", "alpha_senders", "messages", "channel_senders")
        return {
            "account_sid": service.account_sid,
            "area_code_geomatch": True,
            "date_created": _iso(service.date_created),
            "date_updated": _iso(service.date_updated),
            "fallback_method": "POST",
            "fallback_to_long_code": True,
            "fallback_url": None,
            "friendly_name": service.friendly_name,
            "inbound_method": service.inbound_method,
            "inbound_request_url": service.inbound_request_url,
            "links": {name: f"{url}/{name.title().replace('_', '')}" for name in links},
            "mms_converter": True,
            "scan_message_content": "inherit",
            "sid": service.sid,
            "smart_encoding": True,
            "status_callback": None,
            "sticky_sender": True,
            "synchronous_validation": True,
            "url": url,
            "usecase": "undeclared",
            "us_app_to_person_registered": False,
            "use_inbound_webhook_on_number": service.use_inbound_webhook_on_number,
            "validity_period": 14400,
        }

    def _service_numbers_json(self, account: _Account, service: _Service) -> dict[str, Any]:
        url = f"{self.url}/v1/Services/{service.sid}/PhoneNumbers"
        members = [
            r for r in self._numbers_of(account) if account.service_numbers.get(r.phone_number) == service.sid
        ]
        return {
            "phone_numbers": [
                {
                    "sid": r.sid,
                    "account_sid": account.sid,
                    "service_sid": service.sid,
                    "date_created": _iso(r.date_created),
                    "date_updated": _iso(r.date_updated),
                    "phone_number": r.phone_number,
                    "country_code": "US" if r.phone_number.startswith("+1") else None,
                    "capabilities": ["SMS", "MMS", "Voice"],
                    "url": f"{url}/{r.sid}",
                }
                for r in members
            ],
            "meta": {
                "page": 0,
                "page_size": 50,
                "first_page_url": f"{url}?PageSize=50&Page=0",
                "previous_page_url": None,
                "url": f"{url}?PageSize=50&Page=0",
                "next_page_url": None,
                "key": "phone_numbers",
            },
        }

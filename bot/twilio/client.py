"""An async client for Twilio's Messages API (v2010) over one shared aiohttp session.

Retries follow what Twilio guarantees. A 429 was not processed and a connection that was refused never
carried the request, so both are retried for every call. A 5xx, a timeout or a dropped connection is
ambiguous: reads and deletes are retried, but a write (a send, scheduled or not, or a cancel) is never
sent twice; it fails with `TwilioError(unknown_outcome=True)` so a person can look before trying again.
Backoff is exponential with full jitter, honours Retry-After, and stops after `max_attempts` tries.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random as _random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final, Literal, Protocol, TypeVar
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from bot import __version__
from bot.twilio.errors import TwilioError, error_from_response
from bot.twilio.models import AccountInfo, Credentials, IncomingNumber, Message, MessagePage

__all__ = ["MAX_MEDIA", "MAX_PAGE_SIZE", "CallObserver", "TwilioClient", "endpoint_name"]

API_VERSION: Final = "2010-04-01"
MAX_MEDIA: Final = 10
MAX_PAGE_SIZE: Final = 1000
RETRY_AFTER_MAX: Final = 30.0

_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_API_KEY_SID = re.compile(r"SK[0-9a-fA-F]{32}")
_NUMBER_SID = re.compile(r"PN[0-9a-fA-F]{32}")
_FORM = "application/x-www-form-urlencoded"
# ClientConnectorDNSError only exists from aiohttp 3.11; older ones carry socket.gaierror instead.
_DNS_ERRORS: tuple[type[BaseException], ...] = tuple(
    error for error in (getattr(aiohttp, "ClientConnectorDNSError", None),) if isinstance(error, type)
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[object]]
Write = Literal["send", "cancel"]


class CallObserver(Protocol):
    """Told about every HTTP try and every failed call (the process's metrics; nothing by default)."""

    def attempt(self, endpoint: str, status: int | None, seconds: float) -> None:
        """One try at `endpoint` (see `endpoint_name`) took `seconds`; `status` None: no answer."""

    def failed(self, endpoint: str, error: TwilioError) -> None:
        """A call ended in `error` after its retries."""


class _Unobserved:
    def attempt(self, endpoint: str, status: int | None, seconds: float) -> None:
        pass

    def failed(self, endpoint: str, error: TwilioError) -> None:
        pass


def endpoint_name(method: str, path_or_url: str) -> str:
    """A call's name without its SIDs (`messages.create`, `accounts.fetch`…), or "other"."""
    path = path_or_url.split("?", 1)[0]
    if path.endswith("/Messages.json"):
        return {"POST": "messages.create", "GET": "messages.list"}.get(method, "other")
    if "/Messages/" in path:
        names = {"GET": "messages.fetch", "POST": "messages.update", "DELETE": "messages.delete"}
        return names.get(method, "other")
    if method == "GET" and re.search(r"/Accounts/[^/]+\.json$", path):
        return "accounts.fetch"
    return "other"


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes


class TwilioClient:
    """Calls Twilio's Messages API for any number of accounts; every call takes the Credentials first.

    `session` is the application's one aiohttp session (this client never creates or closes one);
    `base_url` is TWILIO_API_URL (`https://api.twilio.com`, or a simulator). `timeout` bounds each try
    in seconds. `sleep` and `random` are injectable so tests can record backoff delays without waiting.
    Argument errors (a malformed SID, a naive datetime…) raise ValueError before any request is made;
    everything that goes wrong with Twilio raises TwilioError.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        retry_after_max: float = RETRY_AFTER_MAX,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        observer: CallObserver | None = None,
    ) -> None:
        base = URL(base_url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError("The Twilio API URL must be an http(s) URL such as https://api.twilio.com.")
        if base.user is not None or base.password is not None:
            raise ValueError("The Twilio API URL must not contain credentials.")
        if timeout <= 0 or max_attempts < 1 or backoff_base < 0 or backoff_max < 0 or retry_after_max < 0:
            raise ValueError("timeout must be positive, max_attempts at least 1, and delays not negative.")
        self._session = session
        self._base = str(base.with_query(None).with_fragment(None)).rstrip("/")
        self._origin = str(base.origin())
        self._timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._retry_after_max = retry_after_max
        self._sleep = sleep
        self._random = random
        self._observer: CallObserver = observer or _Unobserved()

    # ── the operations ─────────────────────────────────────────────────────────────────────────────

    async def send(
        self,
        creds: Credentials,
        *,
        to: str,
        body: str,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        send_at: datetime | None = None,
        media_urls: Sequence[str] = (),
        status_callback: str | None = None,
    ) -> Message:
        """Send a message, now or at `send_at`: one create, as Twilio's API has one.

        Now: from `from_` or through a Messaging Service (at least one is required). At `send_at` (an
        aware datetime, sent as UTC): through a Messaging Service, which Twilio requires for scheduling.
        A naive `send_at` raises ValueError: Twilio without a zone would send at the wrong hour. The
        scheduling window itself (15 minutes to 35 days) is Twilio's to judge.

        Never retried after an ambiguous failure: see TwilioError.unknown_outcome.
        """
        if not to:
            raise ValueError("A message needs a recipient (to).")
        if send_at is not None and not messaging_service_sid:
            raise ValueError("Scheduling needs a Messaging Service SID (MG…).")
        if not from_ and not messaging_service_sid:
            raise ValueError("A message needs a sender: give from_ or messaging_service_sid.")
        if messaging_service_sid and not _SERVICE_SID.fullmatch(messaging_service_sid):
            raise ValueError("A Messaging Service SID is MG followed by 32 hexadecimal characters.")
        if isinstance(media_urls, str):
            raise ValueError("media_urls is a sequence of URLs, not one string.")
        if len(media_urls) > MAX_MEDIA:
            raise ValueError(f"Twilio accepts at most {MAX_MEDIA} media URLs per message.")
        form = [("To", to)]
        if from_:
            form.append(("From", from_))
        if messaging_service_sid:
            form.append(("MessagingServiceSid", messaging_service_sid))
        if body or not media_urls:
            form.append(("Body", body))
        form += [("MediaUrl", url) for url in media_urls]
        if status_callback:
            form.append(("StatusCallback", status_callback))
        if send_at is not None:
            form += [("ScheduleType", "fixed"), ("SendAt", format_send_at(send_at))]
        answer = await self._request(creds, "POST", self._messages_path(creds), form=form, write="send")
        return _parse(Message.from_json, answer, write="send")

    async def list_messages(
        self,
        creds: Credentials,
        *,
        to: str | None = None,
        from_: str | None = None,
        date_sent: date | None = None,
        page_size: int = 50,
        page_uri: str | None = None,
    ) -> MessagePage:
        """Fetch ONE page of messages, newest first; never walks further pages on its own.

        Pass a page's `next_page_uri` as `page_uri` to get the next one: it must be a relative link into
        this account's Messages list (ValueError otherwise), and the filters then come from the link.
        """
        if page_uri is not None:
            if to is not None or from_ is not None or date_sent is not None:
                raise ValueError("Give either filters or page_uri, not both: the link carries its filters.")
            url = self._page_url(creds, page_uri)
        else:
            if isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_SIZE:
                raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
            query: list[tuple[str, str]] = []
            if to:
                query.append(("To", to))
            if from_:
                query.append(("From", from_))
            if date_sent is not None:
                query.append(("DateSent", format_date_sent(date_sent)))
            query.append(("PageSize", str(page_size)))
            url = self._url(self._messages_path(creds)) + "?" + urlencode(query)
        answer = await self._request(creds, "GET", url)
        return _parse(MessagePage.from_json, answer)

    async def fetch(self, creds: Credentials, sid: str) -> Message:
        """Fetch one message by its SID (SM… or MM…)."""
        answer = await self._request(creds, "GET", self._message_path(creds, sid))
        return _parse(Message.from_json, answer)

    async def cancel(self, creds: Credentials, sid: str) -> Message:
        """Cancel a scheduled message (Twilio answers 30409 once it is no longer scheduled)."""
        path = self._message_path(creds, sid)
        answer = await self._request(creds, "POST", path, form=[("Status", "canceled")], write="cancel")
        return _parse(Message.from_json, answer, write="cancel")

    async def delete(self, creds: Credentials, sid: str) -> None:
        """Delete a message that has finished sending (Twilio answers 20009 while it is not)."""
        await self._request(creds, "DELETE", self._message_path(creds, sid))

    async def verify_account(self, creds: Credentials) -> AccountInfo:
        """Check the credentials by fetching the account; TwilioError code 20003 when they are wrong."""
        path = f"/{API_VERSION}/Accounts/{self._account_sid(creds)}.json"
        answer = await self._request(creds, "GET", path)
        return _parse(AccountInfo.from_json, answer)

    async def find_incoming_number(self, creds: Credentials, number: str) -> IncomingNumber | None:
        """The account's IncomingPhoneNumber for `number` (a `whatsapp:` prefix is ignored), or None."""
        bare = number.removeprefix("whatsapp:")
        query = urlencode([("PhoneNumber", bare), ("PageSize", "50")])
        path = f"/{API_VERSION}/Accounts/{self._account_sid(creds)}/IncomingPhoneNumbers.json?{query}"
        answer = await self._request(creds, "GET", path)
        found = _parse(IncomingNumber.list_from_json, answer)
        return next((n for n in found if n.phone_number == bare), None)

    async def update_incoming_number(
        self, creds: Credentials, sid: str, *, sms_url: str, sms_method: str = "POST"
    ) -> IncomingNumber:
        """Point a number's incoming texts at `sms_url`; setting it twice is harmless, so this one retries."""
        if not _NUMBER_SID.fullmatch(sid):
            raise ValueError("A phone number SID is PN followed by 32 hexadecimal characters.")
        path = f"/{API_VERSION}/Accounts/{self._account_sid(creds)}/IncomingPhoneNumbers/{sid}.json"
        form = [("SmsUrl", sms_url), ("SmsMethod", sms_method)]
        answer = await self._request(creds, "POST", path, form=form)
        return _parse(IncomingNumber.from_json, answer)

    # ── building requests ───────────────────────────────────────────────────────────────────────────

    @staticmethod
    def _account_sid(creds: Credentials) -> str:
        if not _ACCOUNT_SID.fullmatch(creds.account_sid):
            raise ValueError("The account SID must be AC followed by 32 hexadecimal characters.")
        if creds.api_key_sid is not None and not _API_KEY_SID.fullmatch(creds.api_key_sid):
            raise ValueError("The API key SID must be SK followed by 32 hexadecimal characters.")
        return creds.account_sid

    def _messages_path(self, creds: Credentials) -> str:
        return f"/{API_VERSION}/Accounts/{self._account_sid(creds)}/Messages.json"

    def _message_path(self, creds: Credentials, sid: str) -> str:
        if not isinstance(sid, str) or not _MESSAGE_SID.fullmatch(sid):
            raise ValueError("A message SID is SM or MM followed by 32 hexadecimal characters.")
        return f"/{API_VERSION}/Accounts/{self._account_sid(creds)}/Messages/{sid}.json"

    def _page_url(self, creds: Credentials, page_uri: str) -> str:
        prefix = self._messages_path(creds)
        safe = page_uri.isascii() and page_uri.isprintable() and not any(c in page_uri for c in " #\\")
        if not safe or not (page_uri == prefix or page_uri.startswith(prefix + "?")):
            raise ValueError(
                "page_uri must be the next_page_uri Twilio returned for this account's messages."
            )
        return self._url(page_uri)

    def _url(self, path: str) -> str:
        return self._base + path

    # ── sending, retrying, classifying failures ─────────────────────────────────────────────────────

    async def _request(
        self,
        creds: Credentials,
        method: str,
        path_or_url: str,
        *,
        form: list[tuple[str, str]] | None = None,
        write: Write | None = None,
    ) -> _Answer:
        """One call with retries. A 2xx comes back; anything else ends as a TwilioError."""
        endpoint = endpoint_name(method, path_or_url)
        try:
            return await self._tries(creds, method, path_or_url, endpoint, form=form, write=write)
        except TwilioError as err:
            self._observer.failed(endpoint, err)
            raise

    async def _tries(
        self,
        creds: Credentials,
        method: str,
        path_or_url: str,
        endpoint: str,
        *,
        form: list[tuple[str, str]] | None,
        write: Write | None,
    ) -> _Answer:
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self._url(path_or_url)
        headers = {
            "Accept": "application/json",
            "Authorization": _basic_auth(creds),
            "User-Agent": f"slack-twilio-bridge/{__version__}",
        }
        data: bytes | None = None
        if form is not None:
            data = urlencode(form).encode("ascii")
            headers["Content-Type"] = _FORM
        ambiguous_before = False
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self._max_attempts
            try:
                status, body, retry_after = await self._once(endpoint, method, url, data, headers)
            except aiohttp.ClientSSLError as exc:
                raise TwilioError(
                    f"TLS failure talking to {self._origin}",
                    hint=f"Could not talk securely to Twilio at {self._origin} (TLS failed); "
                    "ask an admin to check TWILIO_API_URL and the server's certificates.",
                ) from exc
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                # The request never left: safe to retry for every method, creates included.
                if last:
                    raise self._unreachable(exc, write) from exc
                await self._backoff(method, path_or_url, attempt, None, _connect_reason(exc))
                continue
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientError, TimeoutError) as exc:
                reason = self._ambiguous_reason(exc)
                if write is not None:
                    raise _unknown_outcome(write, reason) from exc
                if last:
                    raise TwilioError(
                        reason,
                        hint=f"Twilio did not answer after {attempt} tries ({reason}); "
                        "try again in a minute.",
                        retryable=True,
                    ) from exc
                ambiguous_before = True
                await self._backoff(method, path_or_url, attempt, None, reason)
                continue

            body = _redact(body, creds.secret)
            if 200 <= status < 300:
                return _Answer(status, body)
            if status == 404 and method == "DELETE" and ambiguous_before:
                # An earlier try that got no answer deleted it; the user's wish is fulfilled.
                return _Answer(204, b"")
            if status == 429:
                if last:
                    raise error_from_response(status, body, retryable=True)
                await self._backoff(method, path_or_url, attempt, retry_after, "HTTP 429")
                continue
            if status >= 500:
                if write is not None:
                    raise _unknown_outcome(write, f"Twilio answered HTTP {status}", status)
                if last:
                    raise error_from_response(status, body, retryable=True)
                ambiguous_before = ambiguous_before or method == "DELETE"
                await self._backoff(method, path_or_url, attempt, retry_after, f"HTTP {status}")
                continue
            raise error_from_response(status, body)

    async def _once(
        self, endpoint: str, method: str, url: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, float | None]:
        """One HTTP try: status, body and Retry-After; the observer hears how long it took."""
        started, status = time.perf_counter(), None
        try:
            async with self._session.request(
                method,
                URL(url, encoded=True),
                data=data,
                headers=headers,
                timeout=self._client_timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
                return status, body, _retry_after(response.headers.get("Retry-After"))
        finally:
            self._observer.attempt(endpoint, status, time.perf_counter() - started)

    async def _backoff(
        self, method: str, path: str, attempt: int, retry_after: float | None, reason: str
    ) -> None:
        if retry_after is not None:
            delay = min(retry_after, self._retry_after_max)
        else:
            delay = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1)) * self._random()
        logger.warning(
            "Twilio %s %s: %s; retry %d of %d in %.2f s",
            method,
            path.split("?", 1)[0],
            reason,
            attempt,
            self._max_attempts - 1,
            delay,
        )
        await self._sleep(delay)

    def _ambiguous_reason(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer within {self._timeout:g} s"
        if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
            return "the connection closed before Twilio answered"
        return "the answer was cut off"

    def _unreachable(self, exc: BaseException, write: Write | None) -> TwilioError:
        reason = _connect_reason(exc)
        tail = {"send": " Nothing was sent.", "cancel": " Nothing was canceled.", None: ""}[write]
        return TwilioError(
            f"could not reach {self._origin}: {reason}",
            hint=f"Could not reach Twilio at {self._origin} ({reason}); try again in a minute, "
            f"or ask an admin to check TWILIO_API_URL.{tail}",
            retryable=True,
        )


def format_send_at(send_at: datetime) -> str:
    """`SendAt` as Twilio wants it, `YYYY-MM-DDTHH:MM:SSZ` in UTC; ValueError for a naive datetime."""
    if send_at.utcoffset() is None:
        raise ValueError("send_at must be timezone-aware (UTC); a naive time is ambiguous.")
    return send_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_date_sent(day: date) -> str:
    """`DateSent` for a list filter: the day at midnight UTC, as Twilio's own helper library sends it.

    Twilio reads it as "sent on that day"; the API spec declares the parameter as a date-time, so a bare
    `YYYY-MM-DD` would be refused by a validator that follows the spec.
    """
    if isinstance(day, datetime):
        raise ValueError("date_sent is a calendar date (datetime.date), not a datetime.")
    return f"{day.isoformat()}T00:00:00Z"


def _parse(build: Callable[[object], T], answer: _Answer, *, write: Write | None = None) -> T:
    """Decode a 2xx answer; a write whose answer cannot be read may still have been applied."""
    try:
        payload: object = json.loads(answer.body.decode("utf-8"))
        return build(payload)
    except (UnicodeDecodeError, ValueError, TwilioError) as exc:
        if write is not None:
            reason = f"Twilio answered HTTP {answer.status} but unreadably"
            unreadable = _unknown_outcome(write, reason, answer.status)
            raise unreadable from exc
        if isinstance(exc, TwilioError):
            raise
        raise TwilioError(
            f"not JSON (HTTP {answer.status})",
            status=answer.status,
            hint="Twilio's answer could not be understood (it was not JSON); try again in a minute.",
        ) from exc


def _unknown_outcome(write: Write, reason: str, status: int | None = None) -> TwilioError:
    if write == "send":
        hint = (
            f"Twilio did not confirm whether the message was sent ({reason}); it was not re-sent. "
            "Check /twilio list before trying again."
        )
    else:
        hint = (
            f"Twilio did not confirm whether the message was canceled ({reason}); it was not retried. "
            "Check /twilio fetch with the message SID before trying again."
        )
    return TwilioError(reason, status=status, hint=hint, unknown_outcome=True)


def _connect_reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "the connection timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc, _DNS_ERRORS) or isinstance(exc.os_error, socket.gaierror):
            return "the host name was not found"
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
    return "could not connect"


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, from delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)) / timedelta(seconds=1)
    if seconds != seconds or seconds == float("inf"):  # NaN or infinity
        return None
    return max(0.0, seconds)


def _basic_auth(creds: Credentials) -> str:
    """The Authorization header value (built here: aiohttp.BasicAuth is deprecated from 3.14)."""
    if ":" in creds.username:
        raise ValueError("A SID used as the Basic auth user cannot contain ':'.")
    token = base64.b64encode(f"{creds.username}:{creds.secret}".encode()).decode("ascii")
    return f"Basic {token}"


def _redact(body: bytes, secret: str) -> bytes:
    """Never let the secret reach an error message, even if an answer echoes it."""
    if len(secret) >= 8:
        return body.replace(secret.encode("utf-8"), b"[redacted]")
    return body

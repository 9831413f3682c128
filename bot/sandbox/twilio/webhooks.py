"""Requests the simulator makes to the bot, as Twilio makes them: signed, timed out and retried.

Both kinds of webhook (status callbacks and inbound texts) go through `post_webhook`:

* the signature is Twilio's: base64 HMAC-SHA1, keyed by the account's auth token, of the full URL
  followed by every form parameter as name + value, names sorted (twilio-python's `RequestValidator`
  accepts it; the tests check);
* the connection follows Twilio's defaults, which a URL may override with a fragment (Twilio's
  "connection overrides", e.g. ``https://bot.example/twilio/status#rc=3&rp=all&rt=2000``): connect timeout
  ``ct`` 5000 ms, read timeout ``rt`` 15000 ms, total ``tt`` 15000 ms, retry count ``rc`` 1, retry policy
  ``rp`` (``ct``, ``rt``, ``4xx``, ``5xx``, ``all``). The fragment is never sent nor signed;
* every attempt and its answer is kept in a `Webhook` record.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urldefrag, urlencode

import aiohttp

SIGNATURE_HEADER: Final = "X-Twilio-Signature"
USER_AGENT: Final = "TwilioProxy/1.1"
MAX_ANSWER_KEPT: Final = 2000  # characters of the bot's answer kept in the record

WebhookKind = Literal["status_callback", "inbound"]
Failure = Literal["ct", "rt", "4xx", "5xx"]
_POLICIES: Final = frozenset({"ct", "rt", "4xx", "5xx", "all"})


def twilio_signature(auth_token: str, url: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """`X-Twilio-Signature` for a request to `url` (query included) with form `params`."""
    text = url + "".join(name + value for name, value in sorted(params))
    mac = hmac.new(auth_token.encode("utf-8"), text.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


@dataclass(frozen=True)
class WebhookPolicy:
    """How Twilio connects to a webhook: timeouts in seconds, retries, and which failures it retries."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 15.0
    retries: int = 1
    retry_on: frozenset[str] = frozenset({"ct"})

    def with_fragment(self, fragment: str) -> WebhookPolicy:
        """This policy with a URL fragment's connection overrides applied (bad values are ignored)."""
        changes: dict[str, Any] = {}
        for key, value in parse_qsl(fragment):
            if key in ("ct", "rt", "tt") and value.isdigit():
                name = {"ct": "connect_timeout", "rt": "read_timeout", "tt": "total_timeout"}[key]
                limit = 10_000 if key == "ct" else 15_000
                changes[name] = min(max(int(value), 100), limit) / 1000
            elif key == "rc" and value.isdigit():
                changes["retries"] = min(int(value), 5)
            elif key == "rp":
                wanted = frozenset(value.split(","))
                if wanted <= _POLICIES:
                    changes["retry_on"] = wanted
        return dataclasses.replace(self, **changes)

    def retries_after(self, failure: Failure) -> bool:
        """Whether a failed attempt of this kind is retried."""
        return "all" in self.retry_on or failure in self.retry_on


CALLBACK_POLICY: Final = WebhookPolicy()
"""Status callbacks: retried once, and only when the connection could not be made."""
INBOUND_POLICY: Final = WebhookPolicy(retry_on=frozenset({"ct", "rt"}))
"""Inbound texts: retried once when the connection fails or the bot does not answer in time."""


@dataclass
class Attempt:
    """One try at a webhook: the HTTP status (None when there was none) and why it failed, if it did."""

    status: int | None
    failure: Failure | None
    answer: str  # the start of the bot's answer body
    content_type: str
    elapsed: float  # seconds
    retry: int = 0  # 0 for the first try
    error: str | None = None  # the connection error, in words

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass
class Webhook:
    """A request the simulator made (or chose not to make) to the bot, with every attempt."""

    kind: WebhookKind
    url: str | None  # as configured, fragment included; None when nothing was configured
    method: str
    form: list[tuple[str, str]]
    account_sid: str
    message_sid: str
    time: datetime  # sim clock, when it was due
    message_status: str | None = None  # status callbacks: the MessageStatus it reports
    signature: str = ""
    fault: str | None = None  # the callback fault applied ("drop", "duplicate", "late")
    note: str | None = None  # why nothing was sent, when nothing was
    attempts: list[Attempt] = field(default_factory=list)
    done: bool = False  # every attempt it will make has been made

    @property
    def status(self) -> int | None:
        """The HTTP status of the last attempt (None: not sent, or no answer)."""
        return self.attempts[-1].status if self.attempts else None

    @property
    def params(self) -> dict[str, str]:
        """The form as a dict (webhook forms never repeat a name)."""
        return dict(self.form)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``GET /_sim/webhooks``). Holds no secret: only the signature."""
        data = dataclasses.asdict(self)
        data["time"] = self.time.isoformat()
        data["status"] = self.status
        data["form"] = dict(self.form)
        return data


def _classify(err: BaseException) -> Failure:
    # Refused, unreachable or slow to connect: Twilio never got the request through ("ct"); anything
    # after the request went out (no answer in time, a dropped connection) counts as a read failure.
    if isinstance(err, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return "ct"
    return "rt"


async def post_webhook(
    session: aiohttp.ClientSession, record: Webhook, auth_token: str, policy: WebhookPolicy
) -> Webhook:
    """Make the request `record` describes, signed with `auth_token`; fills in its attempts."""
    assert record.url is not None
    url, fragment = urldefrag(record.url)
    policy = policy.with_fragment(fragment) if fragment else policy
    body: str | None = urlencode(record.form)
    if record.method == "GET":
        url = f"{url}{'&' if '?' in url else '?'}{body}"
        body = None
    record.signature = twilio_signature(auth_token, url, () if body is None else record.form)
    headers = {
        SIGNATURE_HEADER: record.signature,
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "I-Twilio-Idempotency-Token": secrets.token_hex(16),
    }
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
    started = time.monotonic()
    for retry in range(policy.retries + 1):
        left = policy.total_timeout - (time.monotonic() - started)
        if left <= 0:
            break
        timeout = aiohttp.ClientTimeout(
            total=left, sock_connect=policy.connect_timeout, sock_read=policy.read_timeout
        )
        begun = time.monotonic()
        try:
            async with session.request(
                record.method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                text = await resp.text(errors="replace")
                failure: Failure | None = (
                    "5xx" if resp.status >= 500 else "4xx" if resp.status >= 400 else None
                )
                attempt = Attempt(resp.status, failure, text[:MAX_ANSWER_KEPT], resp.content_type, 0.0, retry)
        except (aiohttp.ClientError, TimeoutError) as err:
            attempt = Attempt(None, _classify(err), "", "", 0.0, retry, type(err).__name__)
        attempt.elapsed = time.monotonic() - begun
        record.attempts.append(attempt)
        if attempt.failure is None or not policy.retries_after(attempt.failure):
            break
    record.done = True
    return record

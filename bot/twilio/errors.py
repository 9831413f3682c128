"""TwilioError: what went wrong with a Twilio call, as one sentence a Slack user can act on.

Twilio answers errors as JSON `{code, message, more_info, status}`. The codes people meet most often get a
plain-words hint here (what it means for whoever typed the command, and what to do next); any other code
gets a generic sentence that quotes Twilio's own message, cut short and cleaned of control characters.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = ["HINTS", "TwilioError", "clean_text", "error_from_response", "hint_for"]

MAX_TWILIO_TEXT = 300
"""Twilio's own error message is quoted to the user, cut to this many characters."""

HINTS: Mapping[int, str] = {
    20003: "Twilio rejected the account's credentials; an admin should run /twilio setup again.",
    20009: (
        "Twilio can only delete a message once it has finished sending (delivered, failed or "
        "undelivered); wait a little and try again, or cancel it if it is still scheduled."
    ),
    20404: (
        "Twilio has no such message or account; check the SID and that you picked the right "
        "account with --account."
    ),
    20429: "Twilio is rate-limiting this account right now; wait a minute and try again.",
    21211: (
        "The 'To' number is not a valid phone number; check the digits and the country code "
        "(for example +15551234567)."
    ),
    21212: (
        "The 'From' number is not a valid sender for this account; use one of the account's Twilio "
        "numbers with --from, or a Messaging Service."
    ),
    21408: (
        "This Twilio account may not send SMS to that country; an admin must enable the region in "
        "Twilio's Messaging Geo Permissions."
    ),
    21602: "The message needs some text (or a media URL); add a body and try again.",
    21603: (
        "The message needs a sender; pass --from with one of the account's numbers, or set up a "
        "Messaging Service for the account."
    ),
    21604: "The message needs a 'To' number; add the recipient and try again.",
    21606: (
        "The 'From' number cannot send messages to this destination; choose another sender with --from "
        "that is SMS-capable for that country, or use a Messaging Service."
    ),
    21608: (
        "This is a Twilio trial account: it can only send to phone numbers verified in the Twilio "
        "console. Verify the recipient there, or upgrade the account."
    ),
    21610: (
        "The recipient replied STOP and has unsubscribed from this sender; they must text START to "
        "it before you can message them again."
    ),
    21611: (
        "This sender has too many messages waiting in Twilio's queue; wait for it to drain and try again."
    ),
    21612: (
        "Twilio cannot carry a message from this sender to that number (the carrier or the kind of "
        "number does not allow it); try another sender with --from."
    ),
    21614: "The 'To' number is not a mobile number, so it cannot receive SMS; check the number.",
    21617: "The message is too long for Twilio (more than 1600 characters); shorten it and try again.",
    21701: (
        "Twilio does not know that Messaging Service for this account; check the MG… SID with --service "
        "or ask an admin to update the account's default service."
    ),
    # Delivery errors: they come with a message's undelivered or failed status, not with an API answer.
    30001: "Twilio's queue for this sender overflowed, so the message was dropped; send it again later.",
    30002: "The Twilio account was suspended between sending and delivery; an admin should check it.",
    30003: (
        "The recipient's phone could not be reached (switched off, out of coverage, or the number is "
        "no longer in service)."
    ),
    30004: "The recipient's carrier blocked the message (the number may be blocked from receiving texts).",
    30005: "The recipient's number is unknown to its carrier: it may not exist any more; check it.",
    30006: "The number is a landline or cannot receive texts, so the message could not be delivered.",
    30007: (
        "The carrier filtered the message as likely spam; register the sender (A2P 10DLC or toll-free "
        "verification) or change the text."
    ),
    30008: "The carrier could not deliver the message and gave no reason; try again later.",
    30409: (
        "Only a message that is still scheduled can be canceled; this one has already been sent or canceled."
    ),
    35114: (
        "Twilio cannot schedule a message at that time; pick a UTC time between 15 minutes and 35 days "
        "from now."
    ),
    35115: (
        "The scheduled time is outside Twilio's window; it must be at least 15 minutes and at most "
        "35 days from now."
    ),
    35118: (
        "Scheduling needs a Messaging Service; pick one with --service or ask an admin to set a default "
        "service for the account."
    ),
}
"""Plain-words hints for the Twilio error codes a Slack user is most likely to meet."""

# What to say when an answer has no Twilio error code but its HTTP status is telling enough.
_STATUS_HINTS: Mapping[int, str] = {
    401: HINTS[20003],
    403: "Twilio refused this request for the account (HTTP 403); an admin should check its permissions.",
    404: HINTS[20404],
    429: HINTS[20429],
}

_CONTROL = re.compile(r"\s+")
_LINK = re.compile(r"https?://[^\s<>\"'`|]{1,200}")


def hint_for(code: int | None) -> str | None:
    """The plain-words hint for a Twilio error code, or None when we have none for it."""
    if code is None:
        return None
    return HINTS.get(code)


def clean_text(text: str, limit: int = MAX_TWILIO_TEXT) -> str:
    """Text from Twilio made safe to quote: no control or format characters, one line, at most `limit`."""
    kept = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    kept = _CONTROL.sub(" ", kept).strip()
    if len(kept) > limit:
        kept = kept[: limit - 1].rstrip() + "…"
    return kept


def _clean_link(value: object) -> str | None:
    """Twilio's `more_info` link when it is a plain http(s) URL, else None."""
    if isinstance(value, str) and _LINK.fullmatch(value):
        return value
    return None


class TwilioError(Exception):
    """A Twilio call that did not succeed; `str()` is the sentence to show the user.

    `code` is Twilio's error code when it sent one, `status` the HTTP status when there was an answer,
    `message` Twilio's own (cleaned) message or a description of what failed on the way, `hint` the
    plain-words explanation. `unknown_outcome` is True when a write (a send, schedule or cancel) may have
    been applied although Twilio never confirmed it: it was deliberately not retried. `retryable` is True
    when trying the same call again later is safe and may well succeed.
    """

    status: int | None
    code: int | None
    message: str
    more_info: str | None
    hint: str
    unknown_outcome: bool
    retryable: bool

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: int | None = None,
        more_info: str | None = None,
        hint: str | None = None,
        unknown_outcome: bool = False,
        retryable: bool = False,
    ) -> None:
        self.status = status
        self.code = code
        self.message = clean_text(message)
        self.more_info = _clean_link(more_info)
        self.unknown_outcome = unknown_outcome
        self.retryable = retryable
        known = hint if hint is not None else hint_for(code)
        if known is None and status is not None:
            known = _STATUS_HINTS.get(status)
        if known is not None:
            self.hint = known
            sentence = known if code is None else f"{known} (Twilio error {code})"
        else:
            said = self.message or "no explanation"
            self.hint = f"Twilio refused the request: {said.rstrip('.')}."
            sentence = self.hint
            if code is not None:
                sentence = f"{sentence[:-1]} (Twilio error {code})."
            if self.more_info:
                sentence = f"{sentence} More: {self.more_info}"
        super().__init__(sentence)

    def __str__(self) -> str:
        return str(self.args[0])

    def __repr__(self) -> str:
        return (
            f"TwilioError(status={self.status!r}, code={self.code!r}, message={self.message!r}, "
            f"unknown_outcome={self.unknown_outcome!r}, retryable={self.retryable!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive Exception's default pickling (logging queues, executors).
        return (_rebuild, (self.message, self.__dict__.copy(), str(self)))


def _rebuild(message: str, state: dict[str, Any], sentence: str) -> TwilioError:
    err = TwilioError(message)
    err.__dict__.update(state)
    err.args = (sentence,)
    return err


def error_from_response(status: int, body: bytes, *, retryable: bool = False) -> TwilioError:
    """A TwilioError for an HTTP error answer, whether or not its body is Twilio's JSON error shape.

    A body that is not JSON (an HTML 502 from a proxy, say) gives a sentence naming the HTTP status.
    """
    payload: object = None
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        payload = None
    if isinstance(payload, dict):
        code = payload.get("code")
        message = payload.get("message")
        if isinstance(code, int) and not isinstance(code, bool) and isinstance(message, str):
            more_info = payload.get("more_info")
            # A server error we have no hint for reads better as "server error, try again" than quoted.
            hint = _status_sentence(status) if status >= 500 and hint_for(code) is None else None
            return TwilioError(
                message,
                status=status,
                code=code,
                more_info=more_info if isinstance(more_info, str) else None,
                hint=hint,
                retryable=retryable,
            )
    return TwilioError(
        f"HTTP {status} without a Twilio error body",
        status=status,
        hint=_status_sentence(status),
        retryable=retryable,
    )


def _status_sentence(status: int) -> str:
    """What to say about an error answer that carries no Twilio error code."""
    if status in _STATUS_HINTS:
        return _STATUS_HINTS[status]
    if status >= 500:
        return f"Twilio answered with a server error (HTTP {status}); try again in a minute."
    return f"Twilio refused the request (HTTP {status}) without saying why."

"""TwilioError sentences: plain-words hints for common codes, safe quoting of anything else."""

from __future__ import annotations

import json
import pickle

import pytest

from bot.twilio import HINTS, TwilioError, hint_for
from bot.twilio.errors import error_from_response

MUST_HAVE_HINTS = [
    20003, 20009, 20404, 20429, 21211, 21212, 21408, 21602, 21603, 21604, 21606, 21608, 21610, 21611,
    21612, 21614, 21617, 21701, 30409, 35114, 35115, 35118,
]  # fmt: skip


def twilio_body(code: int, message: str, status: int = 400) -> bytes:
    """An error body in Twilio's shape."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return json.dumps({"code": code, "message": message, "more_info": more_info, "status": status}).encode()


@pytest.mark.parametrize("code", MUST_HAVE_HINTS)
def test_common_codes_have_a_plain_words_hint(code: int) -> None:
    """Each code a Slack user is likely to meet has a hint of one or two full sentences."""
    hint = hint_for(code)
    assert hint is not None and hint == HINTS[code]
    assert hint[0].isupper() and hint.endswith(".") and 30 < len(hint) < 300


@pytest.mark.parametrize("code", MUST_HAVE_HINTS)
def test_hinted_error_says_the_hint_and_the_code(code: int) -> None:
    """str() of a hinted error is the hint followed by "(Twilio error N)"."""
    err = error_from_response(400, twilio_body(code, "whatever Twilio said"))
    assert str(err) == f"{HINTS[code]} (Twilio error {code})"
    assert (err.code, err.status, err.hint) == (code, 400, HINTS[code])
    assert err.more_info == f"https://www.twilio.com/docs/errors/{code}"


def test_specific_hints_tell_the_user_what_to_do() -> None:
    """The hints that matter most carry the action a user must take."""
    assert "START" in HINTS[21610] and "STOP" in HINTS[21610]
    assert "verified" in HINTS[21608] and "trial" in HINTS[21608].lower()
    assert HINTS[20003] == (
        "Twilio rejected the account's credentials; an admin should run /twilio setup again."
    )
    assert "scheduled" in HINTS[30409]
    assert "Messaging Service" in HINTS[35118]


def test_hint_for_unknown_or_missing_code_is_none() -> None:
    """Codes without a hint, and no code, give None so callers can fall back."""
    assert hint_for(None) is None and hint_for(12345) is None


def test_unknown_code_quotes_twilios_message_and_link() -> None:
    """An unhinted code gets a generic sentence with Twilio's message, the code and the more_info link."""
    err = error_from_response(400, twilio_body(63016, "Failed to send freeform message outside the window"))
    assert str(err) == (
        "Twilio refused the request: Failed to send freeform message outside the window "
        "(Twilio error 63016). More: https://www.twilio.com/docs/errors/63016"
    )
    assert err.message == "Failed to send freeform message outside the window"


def test_twilios_message_is_cut_and_cleaned() -> None:
    """Twilio's text is cut to 300 characters and loses control and format characters."""
    nasty = "line one\nline two\x00\x1b[31m\u202eevil" + "x" * 1000
    err = error_from_response(400, twilio_body(63999, nasty))
    assert len(err.message) <= 300 and err.message.endswith("…")
    for bad in ("\n", "\x00", "\x1b", "\u202e"):
        assert bad not in str(err)
    assert err.message.startswith("line one line two")


def test_a_strange_more_info_link_is_dropped() -> None:
    """more_info is only kept when it is a plain http(s) URL."""
    body = json.dumps({"code": 63000, "message": "m", "more_info": "javascript:alert(1)", "status": 400})
    err = error_from_response(400, body.encode())
    assert err.more_info is None and "javascript" not in str(err)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (502, b"<html><h1>502 Bad Gateway</h1></html>", "HTTP 502"),
        (503, b"", "HTTP 503"),
        (500, b'{"error": "boom"}', "HTTP 500"),
        (418, b"I'm a teapot", "HTTP 418"),
        (401, b"Unauthorized", "/twilio setup"),
        (404, b"nope", "no such message"),
        (429, b"slow down", "rate-limiting"),
    ],
)
def test_non_twilio_bodies_give_a_sentence_with_the_status(status: int, body: bytes, expected: str) -> None:
    """An answer without Twilio's error JSON still becomes one clear sentence, never markup."""
    err = error_from_response(status, body)
    assert expected in str(err) and "<" not in str(err)
    assert err.code is None and err.status == status


def test_unhinted_server_error_code_keeps_the_server_error_sentence() -> None:
    """A 5xx with a Twilio code we have no hint for says it was a server error."""
    err = error_from_response(503, twilio_body(20503, "Service Unavailable", 503), retryable=True)
    assert "server error" in str(err) and "(Twilio error 20503)" in str(err) and err.retryable


def test_flags_default_to_false() -> None:
    """A plain TwilioError is neither retryable nor of unknown outcome."""
    err = TwilioError(code=21211)
    assert not err.retryable and not err.unknown_outcome and err.status is None
    assert str(err) == f"{HINTS[21211]} (Twilio error 21211)"


def test_explicit_hint_wins() -> None:
    """A hint passed in is the sentence (the style guide's TwilioError(code=…, hint=…))."""
    err = TwilioError(code=21211, hint="Use E.164.")
    assert err.hint == "Use E.164." and str(err) == "Use E.164. (Twilio error 21211)"


def test_no_secret_in_str_or_repr() -> None:
    """Nothing a TwilioError prints contains more than its fields; secrets are never among them."""
    err = error_from_response(401, twilio_body(20003, "Authenticate", 401))
    for text in (str(err), repr(err), err.message, err.hint):
        assert "Authorization" not in text and "Basic " not in text


def test_repr_names_the_fields() -> None:
    """repr() shows status, code and the flags for logs."""
    err = TwilioError("m", status=400, code=21610, unknown_outcome=False)
    assert repr(err).startswith("TwilioError(status=400, code=21610")


def test_survives_pickling() -> None:
    """A TwilioError can cross a process or logging queue boundary intact."""
    err = TwilioError("boom", status=500, code=20500, unknown_outcome=True, retryable=False)
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 (our own bytes, just made)
    assert str(copy) == str(err) and copy.unknown_outcome and copy.code == 20500

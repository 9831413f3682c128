"""Phone numbers: E.164 and `whatsapp:` normalisation with phonenumbers.

Only numbers that `phonenumbers.is_possible_number` rejects are refused here: Twilio judges
whether a possible number is assigned (its data is fresher, and the docs' own +1555… examples are
possible but not "valid"), and its 21211 comes back to the user in plain words.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from bot.core.errors import InputError, quoted

__all__ = ["EXAMPLE_NUMBER", "MAX_PHONE_INPUT", "PhoneNumber", "parse_phone", "rank_phone"]

EXAMPLE_NUMBER = "+15551234567"
# Longest text handed to phonenumbers: E.164 has at most 15 digits, so 64 characters leave room
# for any punctuation a person types while keeping pathological input away from the parser.
MAX_PHONE_INPUT = 64

_WHATSAPP_PREFIX = re.compile(r"\s*whatsapp\s*:\s*", re.IGNORECASE)
_TEL_PREFIX = re.compile(r"\s*tel\s*:\s*", re.IGNORECASE)
# What people put between digits. Everything else is refused before phonenumbers sees it, because
# phonenumbers quietly drops trailing junk and reads extensions ("x12", "ext. 5"), which SMS cannot
# dial, and we would rather say so than send to a number the user did not write.
_PUNCTUATION = frozenset("+-‐‑‒–—―−()[]./~⁓∼～（）［］．／－＋ \u00a0\u2009\u202f\u3000")
_FIELD_NAMES = {"to": "The To number", "from": "The From number"}


@dataclass(frozen=True)
class PhoneNumber:
    """A phone number in E.164 form (`+15551234567`), marked when it is a WhatsApp address."""

    e164: str
    whatsapp: bool = False

    def __str__(self) -> str:
        return f"whatsapp:{self.e164}" if self.whatsapp else self.e164

    @classmethod
    def from_str(cls, text: str) -> PhoneNumber:
        """Read back what `str()` wrote (`+1…` or `whatsapp:+1…`), unchecked: it was checked when stored."""
        bare = text.removeprefix("whatsapp:")
        return cls(bare, whatsapp=bare != text)


def parse_phone(text: str, *, default_region: str = "US", field: str = "to") -> PhoneNumber:
    """Parse E.164, `whatsapp:+…` or a national number placed with `default_region`.

    Raises InputError (with `field`) naming what is wrong: empty, letters, stray symbols, too
    short, too long, unknown country code, or not a number at all.
    """
    return _parse_phone(text, default_region, field)


# A team texts the same numbers again and again, and phonenumbers takes about 25 us a parse, on the ack's
# path: the answers (immutable) are kept for the most recent few thousand; refusals are worked out anew.
@functools.lru_cache(maxsize=4096)
def _parse_phone(text: str, default_region: str, field: str) -> PhoneNumber:
    name = _FIELD_NAMES.get(field, "The phone number")
    example = f"like {EXAMPLE_NUMBER}"
    if len(text) > MAX_PHONE_INPUT:
        raise InputError(
            f"{name} is {len(text)} characters long, too long for a phone number; enter it {example}.", field
        )
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in text):
        raise InputError(
            f"{name} contains a control character; enter only digits, spaces and +, {example}.", field
        )
    rest = text
    whatsapp = False
    prefix = _WHATSAPP_PREFIX.match(rest)
    if prefix:
        whatsapp = True
        rest = rest[prefix.end() :]
    else:
        tel = _TEL_PREFIX.match(rest)
        if tel:
            rest = rest[tel.end() :]
    rest = rest.strip()
    if not rest:
        after = " after whatsapp:" if whatsapp else ""
        raise InputError(f"{name} is empty{after}; enter a number {example}.", field)
    shown = quoted(rest)
    if any(ch.isalpha() for ch in rest):
        raise InputError(
            f"{name} {shown} contains letters; enter it as digits with the country code, {example}.", field
        )
    stray = next((ch for ch in rest if not ch.isdecimal() and ch not in _PUNCTUATION), None)
    if stray is not None:
        raise InputError(
            f"{name} {shown} contains {quoted(stray)}, which is not part of a phone number; "
            f"enter only digits, spaces and +, {example}.",
            field,
        )
    try:
        number = phonenumbers.parse(rest, default_region.upper())
    except NumberParseException as err:
        raise InputError(_parse_problem(name, shown, rest, err.error_type), field) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        raise InputError(_length_problem(name, shown, reason), field)
    return PhoneNumber(phonenumbers.format_number(number, PhoneNumberFormat.E164), whatsapp)


def rank_phone(text: str, *, default_region: str = "US") -> int:
    """How plausible `text` is as one number: -1 refused, 0 possible only locally, 1 possible, 2 valid.

    Only for choosing between readings of a number typed with spaces ("020 7946 0958" could
    also be read as "020 7946"); acceptance itself never depends on validity.
    """
    try:
        number = parse_phone(text, default_region=default_region)
    except InputError:
        return -1
    parsed = phonenumbers.parse(number.e164)
    if phonenumbers.is_valid_number(parsed):
        return 2
    if phonenumbers.is_possible_number_with_reason(parsed) == ValidationResult.IS_POSSIBLE:
        return 1
    return 0


def _parse_problem(name: str, shown: str, rest: str, error_type: int) -> str:
    """Say in words why phonenumbers could not parse the text at all."""
    example = f"like {EXAMPLE_NUMBER}"
    if error_type == NumberParseException.INVALID_COUNTRY_CODE:
        problem = "an unknown country code" if _starts_international(rest) else "no country code"
        return f"{name} {shown} has {problem}; start it with + and the country code, {example}."
    if error_type in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        return f"{name} {shown} is too short to be a phone number; enter the full number, {example}."
    if error_type == NumberParseException.TOO_LONG:
        return f"{name} {shown} is too long to be a phone number; enter one number, {example}."
    return f"{name} {shown} is not a phone number; enter it with the country code, {example}."


def _length_problem(name: str, shown: str, reason: int) -> str:
    """Say in words why a parsed number is not possible."""
    example = f"like {EXAMPLE_NUMBER}"
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return f"{name} {shown} has an unknown country code; start it with + and the country code, {example}."
    if reason == ValidationResult.TOO_SHORT:
        return f"{name} {shown} is too short to be a phone number; enter the full number, {example}."
    if reason == ValidationResult.TOO_LONG:
        return (
            f"{name} {shown} has too many digits for its country; check the number, "
            f"and start it with + and the country code, {example}."
        )
    return f"{name} {shown} has the wrong number of digits for its country; check the number, {example}."


def _starts_international(text: str) -> bool:
    """True when the text starts with a plus sign (any of its Unicode forms) before any digit."""
    for ch in text:
        if ch in "+＋":
            return True
        if ch.isdecimal():
            return False
    return False

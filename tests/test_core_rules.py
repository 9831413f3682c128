"""Twilio's rules: SIDs, body length and segments, the send-at window, dates, page sizes, labels."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import CommandError, InputError, quoted
from bot.core.rules import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_WINDOW,
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_BODY,
    SID_EXAMPLES,
    SID_PATTERNS,
    BodyInfo,
    body_info,
    check_account_label,
    check_body,
    check_send_at,
    check_sid,
    format_send_at,
    parse_count,
    parse_date,
    parse_page_size,
    parse_send_at,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
NOW_MICRO = datetime(2026, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
HEX = "0123456789abcdef0123456789abcdef"


def refusal(check: Callable[..., object], *args: Any, **kwargs: Any) -> InputError:
    """The InputError that `check(*args, **kwargs)` raises; the test fails if it raises none."""
    with pytest.raises(InputError) as info:
        check(*args, **kwargs)
    return info.value


# --- errors ---------------------------------------------------------------------------------------


def test_input_error_str_is_its_message() -> None:
    """str(InputError) is the user-facing sentence, and the field travels with it."""
    err = InputError("The date is wrong; fix it.", "date")
    assert str(err) == "The date is wrong; fix it."
    assert err.field == "date"
    assert isinstance(err, ValueError)


def test_command_error_carries_usage_and_is_an_input_error() -> None:
    """CommandError adds the usage line and can be caught as InputError."""
    err = CommandError("Bad.", "/twilio fetch SID", "sid")
    assert (err.message, err.usage, err.field, str(err)) == ("Bad.", "/twilio fetch SID", "sid", "Bad.")
    assert isinstance(err, InputError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", "“abc”"),
        ("a\x00b", "“a\ufffdb”"),
        ("a\u202eb", "“a\ufffdb”"),
        ("x" * 50, "“" + "x" * 39 + "…”"),
        ("x" * 40, "“" + "x" * 40 + "”"),
    ],
)
def test_quoted_cuts_and_hides_control_characters(text: str, expected: str) -> None:
    """Echoed input is cut to 40 characters and never carries control or bidi characters."""
    assert quoted(text) == expected


# --- SIDs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("AC" + HEX, "account", "AC" + HEX),
        ("SM" + HEX, "message", "SM" + HEX),
        ("MM" + HEX, "message", "MM" + HEX),
        ("MG" + HEX, "service", "MG" + HEX),
        ("SK" + HEX, "api_key", "SK" + HEX),
        ("  SM" + HEX + "\n", "message", "SM" + HEX),
        ("SM" + HEX.upper(), "message", "SM" + HEX),
        ("sm" + HEX, "message", "SM" + HEX),
        ("mM" + HEX, "message", "MM" + HEX),
    ],
)
def test_check_sid_returns_the_canonical_sid(text: str, kind: str, expected: str) -> None:
    """Whitespace is stripped, the prefix upper-cased and the hex lower-cased."""
    assert check_sid(text, kind) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind", "phrase"),
    [
        ("", "message", "The message SID is empty"),
        ("   ", "account", "The account SID is empty"),
        ("SM" + HEX[:-1], "message", "has 31 hex characters after SM, not 32"),
        ("SM" + HEX + "0", "message", "has 33 hex characters after SM, not 32"),
        ("SM", "message", "has 0 hex characters after SM, not 32"),
        ("SM" + HEX[:-1] + "g", "message", "is not a message SID"),
        ("AC" + HEX, "message", "is an account SID, not a message SID"),
        ("MG" + HEX, "message", "is a Messaging Service SID, not a message SID"),
        ("SM" + HEX, "service", "is a message SID, not a Messaging Service SID"),
        ("SK" + HEX, "account", "is an API key SID, not an account SID"),
        ("XX" + HEX, "message", "is not a message SID"),
        ("SM " + HEX, "message", "is not a message SID"),
        ("hello", "message", "is not a message SID"),
        ("1234", "api_key", "is not an API key SID"),
    ],
)
def test_check_sid_refusals_name_the_expected_shape(text: str, kind: str, phrase: str) -> None:
    """Each refusal says what is wrong and shows a correct example of that kind."""
    refused = refusal(check_sid, text, kind)  # type: ignore[arg-type]
    assert phrase in refused.message
    assert SID_EXAMPLES[kind] in refused.message
    assert refused.field == "sid"


@pytest.mark.parametrize(
    ("kind", "shape"),
    [
        ("account", "starts with AC followed by 32 hex characters"),
        ("message", "starts with SM or MM followed by 32 hex characters"),
        ("service", "starts with MG followed by 32 hex characters"),
        ("api_key", "starts with SK followed by 32 hex characters"),
    ],
)
def test_check_sid_error_describes_each_kind(kind: str, shape: str) -> None:
    """The sentence names the prefixes of the expected kind."""
    refused = refusal(check_sid, "nope", kind, field="service")  # type: ignore[arg-type]
    assert shape in refused.message
    assert refused.field == "service"


def test_check_sid_rejects_an_unknown_kind_as_a_programming_error() -> None:
    """An unknown kind is a bug in the caller, not user input."""
    with pytest.raises(ValueError, match="unknown SID kind") as info:
        check_sid("SM" + HEX, "trunk")  # type: ignore[arg-type]
    assert not isinstance(info.value, InputError)


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("account", "AC" + HEX, "AC" + HEX.upper()),
        ("message", "MM" + HEX, "SM" + HEX[:-1]),
        ("service", "MG" + HEX, "mg" + HEX),
        ("api_key", "SK" + HEX, "SK" + HEX + "0"),
    ],
)
def test_sid_patterns_match_only_canonical_sids(kind: str, good: str, bad: str) -> None:
    """SID_PATTERNS describe the canonical form check_sid returns."""
    assert SID_PATTERNS[kind].fullmatch(good)
    assert SID_PATTERNS[kind].fullmatch(bad) is None
    assert SID_PATTERNS[kind].fullmatch(SID_EXAMPLES[kind])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.sampled_from(["account", "message", "service", "api_key"]))
def test_check_sid_output_always_matches_its_pattern(text: str, kind: str) -> None:
    """Whatever check_sid accepts is canonical; anything else is an InputError."""
    try:
        sid = check_sid(text, kind)  # type: ignore[arg-type]
    except InputError:
        return
    assert SID_PATTERNS[kind].fullmatch(sid)


# --- account labels -------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["main", "us-sales", "a_1-b2", "x", "7", "a" * 32])
def test_check_account_label_accepts_short_plain_names(label: str) -> None:
    """Labels of 1–32 letters, digits, - and _, starting with a letter or digit, are accepted."""
    assert check_account_label(f" {label} ") == label


def test_check_account_label_stores_lower_case() -> None:
    """A label is normalised to lower case, the form it is stored and looked up in."""
    assert check_account_label(" US-Sales ") == "us-sales"


@pytest.mark.parametrize(
    ("label", "phrase"),
    [
        ("", "is empty"),
        ("a" * 33, "33 characters long"),
        ("bad label", "may use only"),
        ("ünï", "may use only"),
        ("a/b", "may use only"),
        ("us.sales", "may use only"),
        ("-main", "starting with a letter or digit"),
        ("_x", "may use only"),
    ],
)
def test_check_account_label_refusals(label: str, phrase: str) -> None:
    """Bad labels get a sentence with the field 'account'."""
    refused = refusal(check_account_label, label)
    assert phrase in refused.message
    assert refused.field == "account"


@given(st.text(max_size=40))
def test_the_label_rule_accepts_exactly_what_storage_accepted(text: str) -> None:
    """Storage's rule before this one (1–32 of a-z 0-9 _ -, lower-cased) and this one agree on every text."""
    normal = text.strip().lower()
    stored_before = re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", normal) is not None
    try:
        label = check_account_label(text)
    except InputError:
        assert not stored_before
        return
    assert stored_before and label == normal


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", BodyInfo(0, "GSM-7", 0)),
        ("hi", BodyInfo(2, "GSM-7", 1)),
        ("a" * 160, BodyInfo(160, "GSM-7", 1)),
        ("a" * 161, BodyInfo(161, "GSM-7", 2)),
        ("a" * 306, BodyInfo(306, "GSM-7", 2)),
        ("a" * 307, BodyInfo(307, "GSM-7", 3)),
        ("a" * 1600, BodyInfo(1600, "GSM-7", 11)),
        ("€" * 80, BodyInfo(80, "GSM-7", 1)),
        ("€" * 81, BodyInfo(81, "GSM-7", 2)),
        ("{" * 79 + "a", BodyInfo(80, "GSM-7", 1)),
        ("a" * 152 + "[" + "a" * 152, BodyInfo(305, "GSM-7", 3)),  # 306 septets, but "[" cannot straddle
        ("a" * 152 + "a" * 8 + "a", BodyInfo(161, "GSM-7", 2)),
        ("é£¥Ç\nØ\rÅΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà@$", BodyInfo(38, "GSM-7", 1)),
        ("ç", BodyInfo(1, "UCS-2", 1)),
        ("\t", BodyInfo(1, "UCS-2", 1)),
        ("a" * 70 + "’", BodyInfo(71, "UCS-2", 2)),
        ("é" * 10 + "中" * 60, BodyInfo(70, "UCS-2", 1)),
        ("中" * 70, BodyInfo(70, "UCS-2", 1)),
        ("中" * 71, BodyInfo(71, "UCS-2", 2)),
        ("中" * 134, BodyInfo(134, "UCS-2", 2)),
        ("中" * 135, BodyInfo(135, "UCS-2", 3)),
        ("😀" * 35, BodyInfo(35, "UCS-2", 1)),
        ("😀" * 36, BodyInfo(36, "UCS-2", 2)),
        ("中" * 66 + "😀", BodyInfo(67, "UCS-2", 1)),  # 68 units fit one 70-unit message
        ("中" * 70 + "😀", BodyInfo(71, "UCS-2", 2)),
        ("中" * 66 + "😀" + "中", BodyInfo(68, "UCS-2", 1)),
    ],
)
def test_body_info_counts_encoding_and_segments(text: str, expected: BodyInfo) -> None:
    """GSM-7 fits 160/153 septets, UCS-2 70/67 UTF-16 units; no character is split."""
    assert body_info(text) == expected


def test_body_info_surrogate_pair_is_not_split_across_segments() -> None:
    """An emoji straddling the 67-unit boundary moves whole to the next segment."""
    text = "中" * 66 + "😀" + "中" * 66  # 134 units: naive 2, but the emoji cannot sit at units 67–68
    assert body_info(text).segments == 3


def test_gsm_tables_do_not_overlap() -> None:
    """A character is either basic or extension, never both, so its width is unambiguous."""
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert len(GSM7_BASIC) == 127  # 128 code points minus ESC
    assert set("^{}\\[~]|€") <= GSM7_EXTENSION


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.text(min_size=1, max_size=40))
def test_body_info_segments_never_drop_when_text_grows(text: str, more: str) -> None:
    """Appending characters never reduces the segment count."""
    assert body_info(text + more).segments >= body_info(text).segments >= (1 if text else 0)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), min_size=1, max_size=800))
def test_body_info_gsm_text_stays_gsm(text: str) -> None:
    """Text drawn only from the GSM tables is counted as GSM-7."""
    info = body_info(text)
    assert info.encoding == "GSM-7"
    septets = len(text) + sum(ch in GSM7_EXTENSION for ch in text)
    if septets <= 160:
        assert info.segments == 1
    else:
        # Each full segment holds 153 septets, or 152 when an escape pair would straddle its end.
        assert -(-septets // 153) <= info.segments <= -(-septets // 152)


@pytest.mark.parametrize(
    "text", ["x", "hello\nworld", "tab\there", "crlf\r\n", "x" * MAX_BODY, "😀" * MAX_BODY]
)
def test_check_body_accepts_one_to_1600_characters(text: str) -> None:
    """Bodies of 1–1600 characters, newlines and tabs included, pass and report their info."""
    assert check_body(text) == body_info(text)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("", "The message body is empty"),
        ("  \n\t ", "The message body is empty"),
        ("x" * (MAX_BODY + 1), "1,601 characters, 1 over Twilio's limit of 1,600"),
        ("x" * 2000, "2,000 characters, 400 over"),
        ("a\x00b", "control character U+0000"),
        ("a\x1bb", "control character U+001B"),
        ("a\x7fb", "control character U+007F"),
        ("a\fb", "control character U+000C"),
    ],
)
def test_check_body_refusals(text: str, phrase: str) -> None:
    """Empty, over-long and control-character bodies are refused with field 'body'."""
    refused = refusal(check_body, text)
    assert phrase in refused.message
    assert refused.field == "body"


# --- send-at --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T15:00:00Z", None),  # outside the window: checked separately below
        ("2026-05-02T10:00:00Z", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02T10:00:00z", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02t10:00:00Z", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02 10:00:00Z", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02T10:00Z", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02T10:00:00.999Z", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02T10:00:00+00:00", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02T10:00:00-00:00", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02T12:00:00+02:00", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02T05:00:00-0500", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02T15:30:00+05:30", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("2026-05-02T19:00:00+09", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("  2026-05-02T10:00:00Z  ", datetime(2026, 5, 2, 10, 0, tzinfo=UTC)),
        ("in 30m", NOW + timedelta(minutes=30)),
        ("in30m", NOW + timedelta(minutes=30)),
        ("in 30 m", NOW + timedelta(minutes=30)),
        ("IN 2H", NOW + timedelta(hours=2)),
        ("in 3d", NOW + timedelta(days=3)),
        ("in 15m", NOW + timedelta(minutes=15)),
        ("in 35d", NOW + timedelta(days=35)),
        ("in 840h", NOW + timedelta(days=35)),
        ("in 0015m", NOW + timedelta(minutes=15)),
    ],
)
def test_parse_send_at_accepts_utc_offsets_and_delays(text: str, expected: datetime | None) -> None:
    """Explicit zones are converted to UTC; delays count from the injected now."""
    if expected is None:
        with pytest.raises(InputError):
            parse_send_at(text, now=NOW)
        year = replace(DEFAULT_WINDOW, max_ahead=timedelta(days=365))
        assert parse_send_at(text, now=NOW, window=year) == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
        return
    result = parse_send_at(text, now=NOW)
    assert result == expected
    assert result.tzinfo is UTC
    assert result.microsecond == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 15m", datetime(2026, 5, 1, 12, 15, 1, tzinfo=UTC)),  # rounded up to stay inside the window
        ("in 2h", datetime(2026, 5, 1, 14, 0, 0, tzinfo=UTC)),
        ("in 35d", datetime(2026, 6, 5, 12, 0, 0, tzinfo=UTC)),
    ],
)
def test_parse_send_at_drops_microseconds_without_leaving_the_window(text: str, expected: datetime) -> None:
    """With a fractional now, delays give whole seconds that still satisfy the window."""
    result = parse_send_at(text, now=NOW_MICRO)
    assert result == expected
    check_send_at(result, now=NOW_MICRO)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("", "The send time is empty"),
        ("   ", "The send time is empty"),
        ("tomorrow", "is not a send time"),
        ("2026-05-02", "is not a send time"),
        ("10:00Z", "is not a send time"),
        ("2026-05-02T10Z", "is not a send time"),
        ("20260502T100000Z", "is not a send time"),
        ("2026-05-02T10:00:00 UTC", "is not a send time"),
        ("in 30", "is not a send time"),
        ("in m", "is not a send time"),
        ("in -5m", "is not a send time"),
        ("in 1.5h", "is not a send time"),
        ("in 30 minutes", "not a delay this command understands"),
        ("in 2 hours", "not a delay this command understands"),
        ("in 3w", "not a delay this command understands"),
        ("2026-05-02T10:00:00", "has no time zone; add Z"),
        ("2026-05-02 10:00", "has no time zone; add Z"),
        ("2026-02-30T10:00:00Z", "is not a real date and time"),
        ("2026-05-02T24:00:00Z", "is not a real date and time"),
        ("2026-05-02T10:60:00Z", "is not a real date and time"),
        ("2026-05-02T10:00:61Z", "is not a real date and time"),
        ("2026-05-02T10:00:00+24:00", "is not a real date and time"),
        ("2026-05-02T10:00:00+05:60", "is not a real date and time"),
        ("0000-01-01T00:00:00Z", "is not a real date and time"),
        ("9999-12-31T23:59:59-23:59", "is not a real date and time"),
        ("x" * 65, "65 characters long"),
        ("in 14m", "too soon"),
        ("in 0m", "too soon"),
        ("2026-05-01T12:14:59Z", "too soon"),
        ("2026-05-01T11:59:59Z", "in the past"),
        ("2020-01-01T00:00:00Z", "in the past"),
        ("in 36d", "too far ahead"),
        ("in 50401m", "too far ahead"),
        ("in 99999999999999999999999d", "too far ahead"),
        ("in " + "9" * 40 + "m", "too far ahead"),
        ("2026-06-05T12:00:01Z", "too far ahead"),
        ("2026-12-01T15:00:00Z", "too far ahead"),
    ],
)
def test_parse_send_at_refusals(text: str, phrase: str) -> None:
    """Unreadable, zone-less, impossible and out-of-window times get sentences with field send_at."""
    refused = refusal(parse_send_at, text, now=NOW)
    assert phrase in refused.message
    assert refused.field == "send_at"


def test_parse_send_at_too_soon_says_at_least_15_minutes_from_now() -> None:
    """The too-soon sentence names the minimum and the earliest allowed time."""
    refused = refusal(parse_send_at, "in 5m", now=NOW)
    assert "at least 15 minutes from now" in refused.message
    assert "2026-05-01T12:15:00Z" in refused.message


def test_parse_send_at_too_late_names_the_latest_allowed_time() -> None:
    """The too-late sentence names the maximum and the latest allowed time."""
    refused = refusal(parse_send_at, "2026-07-01T00:00:00Z", now=NOW)
    assert "at most 35 days ahead" in refused.message
    assert "2026-06-05T12:00:00Z" in refused.message


def test_parse_send_at_honours_a_custom_window() -> None:
    """The window comes from the caller (older accounts allowed only 7 days)."""
    soon = replace(DEFAULT_WINDOW, min_ahead=timedelta(minutes=1))
    assert parse_send_at("in 5m", now=NOW, window=soon) == NOW + timedelta(minutes=5)
    with pytest.raises(InputError, match="at most 7 days ahead"):
        parse_send_at("in 8d", now=NOW, window=replace(DEFAULT_WINDOW, max_ahead=timedelta(days=7)))
    with pytest.raises(InputError, match="at least 1 hour from now"):
        parse_send_at("in 30m", now=NOW, window=replace(DEFAULT_WINDOW, min_ahead=timedelta(hours=1)))


def test_parse_send_at_uses_now_in_any_zone() -> None:
    """An aware now in another zone gives the same instant and a UTC result."""
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    result = parse_send_at("in 2h", now=tokyo)
    assert result == NOW + timedelta(hours=2)
    assert result.utcoffset() == timedelta(0)


def test_parse_send_at_refuses_a_naive_now() -> None:
    """A naive now is a programming error, not user input."""
    with pytest.raises(ValueError, match="timezone-aware") as info:
        parse_send_at("in 2h", now=NOW.replace(tzinfo=None))
    assert not isinstance(info.value, InputError)


@pytest.mark.parametrize(
    ("when", "ok"),
    [
        (NOW + timedelta(minutes=15), True),
        (NOW + timedelta(days=35), True),
        (NOW + timedelta(minutes=15) - timedelta(microseconds=1), False),
        (NOW + timedelta(days=35, microseconds=1), False),
        (NOW - timedelta(seconds=1), False),
    ],
)
def test_check_send_at_window_edges_are_inclusive(when: datetime, ok: bool) -> None:
    """Exactly 15 minutes and exactly 35 days ahead are allowed; a microsecond beyond is not."""
    if ok:
        check_send_at(when, now=NOW)
    else:
        refused = refusal(check_send_at, when, now=NOW)
        assert refused.field == "send_at"


def test_check_send_at_refuses_naive_datetimes() -> None:
    """Comparing a naive time would mean the server's zone; that is a bug, so ValueError."""
    with pytest.raises(ValueError, match="timezone-aware"):
        check_send_at(datetime(2026, 5, 2, 10, 0), now=NOW)


@pytest.mark.parametrize(
    ("dt", "expected"),
    [
        (datetime(2026, 12, 1, 15, 0, tzinfo=UTC), "2026-12-01T15:00:00Z"),
        (datetime(2026, 12, 1, 15, 0, 59, 999_999, tzinfo=UTC), "2026-12-01T15:00:59Z"),
        (datetime(2026, 12, 1, 17, 0, tzinfo=timezone(timedelta(hours=2))), "2026-12-01T15:00:00Z"),
        (datetime(2026, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))), "2027-01-01T00:30:00Z"),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05Z"),
    ],
)
def test_format_send_at_gives_twilio_utc_form(dt: datetime, expected: str) -> None:
    """Any aware datetime is written as UTC YYYY-MM-DDTHH:MM:SSZ."""
    assert format_send_at(dt) == expected


def test_format_send_at_refuses_naive() -> None:
    """A naive datetime has no instant to send at."""
    with pytest.raises(ValueError, match="timezone-aware"):
        format_send_at(datetime(2026, 12, 1, 15, 0))


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_format_send_at_round_trips_through_parse_send_at(dt: datetime) -> None:
    """What format_send_at writes, parse_send_at reads back (within a window around it)."""
    whole = dt.replace(microsecond=0)
    text = format_send_at(whole)
    now = whole - timedelta(hours=1)
    assert parse_send_at(text, now=now) == whole


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=70))
def test_parse_send_at_raises_only_input_error(text: str) -> None:
    """Any text parses to an aware UTC time inside the window, or raises InputError."""
    try:
        when = parse_send_at(text, now=NOW)
    except InputError as err:
        assert err.field == "send_at"
    else:
        assert when.utcoffset() == timedelta(0)
        check_send_at(when, now=NOW)


# --- dates and counts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-12-01", date(2026, 12, 1)), (" 2024-02-29 ", date(2024, 2, 29)), ("0001-01-01", date(1, 1, 1))],
)
def test_parse_date_reads_strict_iso_dates(text: str, expected: date) -> None:
    """YYYY-MM-DD is accepted, surrounding space ignored."""
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("", "The date is empty"),
        ("2026-1-01", "is not a date"),
        ("2026/12/01", "is not a date"),
        ("20261201", "is not a date"),
        ("01-12-2026", "is not a date"),
        ("2026-12-01T00:00:00Z", "is not a date"),
        ("２０２６-１２-０１", "is not a date"),
        ("٢٠٢٦-١٢-٠١", "is not a date"),
        ("today", "is not a date"),
        ("2026-02-29", "is not a real date"),
        ("2026-13-01", "is not a real date"),
        ("0000-01-01", "is not a real date"),
    ],
)
def test_parse_date_refusals(text: str, phrase: str) -> None:
    """Anything but a real YYYY-MM-DD date is refused with field 'date'."""
    refused = refusal(parse_date, text)
    assert phrase in refused.message
    assert "YYYY-MM-DD" in refused.message
    assert refused.field == "date"


@pytest.mark.parametrize(
    ("value", "expected"), [("1", 1), ("20", 20), (" 1000 ", 1000), (50, 50), ("007", 7)]
)
def test_parse_page_size_accepts_1_to_1000(value: str | int, expected: int) -> None:
    """Whole numbers 1–1000, as text or int."""
    assert parse_page_size(value) == expected


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("0", "from 1 to 1000, not 0"),
        ("1001", "from 1 to 1000, not 1001"),
        (0, "from 1 to 1000, not 0"),
        (-3, "from 1 to 1000, not -3"),
        ("-3", "is not a whole number"),
        ("+3", "is not a whole number"),
        ("2.5", "is not a whole number"),
        ("ten", "is not a whole number"),
        ("", "is not a whole number"),
        ("５", "is not a whole number"),
        ("9" * 5000, "is not a whole number"),
        (True, "must be a whole number"),
    ],
)
def test_parse_page_size_refusals(value: str | int, phrase: str) -> None:
    """Out-of-range, non-numeric and boolean values are refused with field 'limit'."""
    refused = refusal(parse_page_size, value)
    assert phrase in refused.message
    assert refused.field == "limit"


def test_default_page_size_is_a_valid_page_size() -> None:
    """The default passes its own check."""
    assert parse_page_size(DEFAULT_PAGE_SIZE) == DEFAULT_PAGE_SIZE == 20


def test_parse_count_names_the_quantity_and_field() -> None:
    """parse_count is the shared bounded-number check behind history N."""
    assert parse_count("50", low=1, high=50, field="limit", name="number of entries") == 50
    with pytest.raises(InputError, match="The number of entries must be from 1 to 50, not 51") as info:
        parse_count("51", low=1, high=50, field="limit", name="number of entries")
    assert info.value.field == "limit"

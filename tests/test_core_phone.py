"""Phone number parsing: what is accepted, how it is normalised, and what each refusal says."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import InputError
from bot.core.phone import EXAMPLE_NUMBER, MAX_PHONE_INPUT, PhoneNumber, parse_phone, rank_phone


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+15551234567", "US", "+15551234567"),
        ("+1 555 123 4567", "US", "+15551234567"),
        ("+1 (555) 123-4567", "US", "+15551234567"),
        ("+1.555.123.4567", "US", "+15551234567"),
        ("(555) 123-4567", "US", "+15551234567"),
        ("555-123-4567", "US", "+15551234567"),
        ("1 555 123 4567", "US", "+15551234567"),
        ("  +15551234567  ", "US", "+15551234567"),
        ("+15005550001", "US", "+15005550001"),  # Twilio magic test number: invalid To
        ("+15005550006", "US", "+15005550006"),  # Twilio magic test number: valid From
        ("+15005550009", "US", "+15005550009"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
        ("00 44 20 7946 0958", "GB", "+442079460958"),
        ("+49 30 1234567", "US", "+49301234567"),
        ("+61 2 9876 5432", "US", "+61298765432"),
        ("+91 98765 43210", "US", "+919876543210"),
        ("tel:+15551234567", "US", "+15551234567"),
        ("TEL: +15551234567", "US", "+15551234567"),
        ("５５５１２３４５６７", "US", "+15551234567"),
        ("+1 555\u00a0123\u00a04567", "US", "+15551234567"),
        ("+1–555–123–4567", "US", "+15551234567"),
        ("5551234567", "us", "+15551234567"),
    ],
)
def test_parse_phone_normalises_to_e164(text: str, region: str, expected: str) -> None:
    """E.164, national formats, punctuation and international prefixes all end up as E.164."""
    assert parse_phone(text, default_region=region) == PhoneNumber(expected, whatsapp=False)


@pytest.mark.parametrize(
    "text",
    [
        "whatsapp:+15551234567",
        "WhatsApp:+15551234567",
        "WHATSAPP:+15551234567",
        "whatsapp: +15551234567",
        " whatsapp : +1 555 123 4567 ",
        "whatsapp:(555) 123-4567",
    ],
)
def test_parse_phone_marks_whatsapp_addresses(text: str) -> None:
    """The whatsapp: prefix is recognised in any case and with spaces, and kept as a flag."""
    number = parse_phone(text)
    assert number == PhoneNumber("+15551234567", whatsapp=True)
    assert str(number) == "whatsapp:+15551234567"


def test_phone_number_str_is_e164_without_whatsapp() -> None:
    """A plain number prints as bare E.164."""
    assert str(PhoneNumber("+15551234567", whatsapp=False)) == "+15551234567"


def test_phone_number_defaults_to_sms() -> None:
    """PhoneNumber(e164) without the flag is an SMS number."""
    assert PhoneNumber("+15551234567").whatsapp is False


def test_docs_example_numbers_are_accepted_though_not_valid() -> None:
    """+1555… is possible but not valid to phonenumbers; Twilio is the judge, so it passes."""
    assert not phonenumbers.is_valid_number(phonenumbers.parse("+15551234567"))
    assert parse_phone("+15551234567").e164 == "+15551234567"


def test_local_only_number_is_accepted_as_phonenumbers_says_it_is_possible() -> None:
    """A seven-digit US number is 'possible (local only)', so the contract lets Twilio judge it."""
    assert parse_phone("555-1234").e164 == "+15551234"


@pytest.mark.parametrize("field", ["to", "from", "phone"])
def test_parse_phone_error_carries_the_field(field: str) -> None:
    """The InputError names the logical field that was given."""
    with pytest.raises(InputError) as info:
        parse_phone("+1 555", field=field)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("field", "name"),
    [("to", "The To number"), ("from", "The From number"), ("other", "The phone number")],
)
def test_parse_phone_error_names_the_number(field: str, name: str) -> None:
    """The sentence starts with which number is wrong."""
    with pytest.raises(InputError) as info:
        parse_phone("", field=field)
    assert info.value.message.startswith(name)


@pytest.mark.parametrize(
    ("text", "region", "phrase"),
    [
        ("", "US", "is empty"),
        ("   ", "US", "is empty"),
        ("whatsapp:", "US", "is empty after whatsapp:"),
        ("whatsapp:   ", "US", "is empty after whatsapp:"),
        ("+1 555", "US", "too short"),
        ("12", "US", "too short"),
        ("+86 1", "US", "too short"),
        ("+1555123456789012", "US", "too many digits"),
        ("020 7946 0958", "US", "too many digits"),
        ("+999 1234567", "US", "unknown country code"),
        ("5551234567", "ZZ", "no country code"),
        ("+", "US", "not a phone number"),
        ("---", "US", "not a phone number"),
        ("+12", "US", "not a phone number"),
        ("1-800-FLOWERS", "US", "contains letters"),
        ("abc", "US", "contains letters"),
        ("5551234567x12", "US", "contains letters"),
        ("+1 555 123 4567 ext 12", "US", "contains letters"),
        ("+1 555 123 4567 #", "US", "contains “#”"),
        ("+1555*1234567", "US", "contains “*”"),
        ("+1555;1234567", "US", "contains “;”"),
        ("+1555\x001234567", "US", "control character"),
        ("+1555\u200b1234567", "US", "control character"),
        ("+1555\n1234567", "US", "control character"),
        ("+1" + "5" * (MAX_PHONE_INPUT - 1), "US", "too long for a phone number"),
    ],
)
def test_parse_phone_refusals_say_what_is_wrong(text: str, region: str, phrase: str) -> None:
    """Each kind of bad number gets its own sentence, and every sentence shows the example."""
    with pytest.raises(InputError) as info:
        parse_phone(text, default_region=region)
    assert phrase in info.value.message
    assert EXAMPLE_NUMBER in info.value.message
    assert str(info.value) == info.value.message
    assert info.value.field == "to"


def test_parse_phone_at_the_length_cap_still_parses() -> None:
    """Input exactly MAX_PHONE_INPUT long is handed to phonenumbers, not refused for length."""
    text = "+15551234567".ljust(MAX_PHONE_INPUT)
    assert len(text) == MAX_PHONE_INPUT
    assert parse_phone(text).e164 == "+15551234567"


def test_parse_phone_refusal_quotes_the_input_but_not_control_characters() -> None:
    """The sentence echoes what was typed, so the user can see the typo."""
    with pytest.raises(InputError) as info:
        parse_phone("+1 555")
    assert "“+1 555”" in info.value.message


possible_numbers = st.sampled_from(
    ["+15551234567", "+442079460958", "+49301234567", "+61298765432", "+919876543210", "+15005550006"]
)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_phone_raises_only_input_error(text: str) -> None:
    """Any text either parses or raises InputError with a sentence, never another exception."""
    try:
        number = parse_phone(text)
    except InputError as err:
        assert err.message.endswith(".")
        assert err.field == "to"
    else:
        assert number.e164.startswith("+")
        assert number.e164[1:].isdigit()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789+()-./ ", max_size=30), st.booleans())
def test_parse_phone_agrees_with_is_possible_number(text: str, whatsapp: bool) -> None:
    """Digits and punctuation are refused exactly when phonenumbers says the number is not possible."""
    try:
        expected = phonenumbers.is_possible_number(phonenumbers.parse(text, "US"))
    except phonenumbers.NumberParseException:
        expected = False
    try:
        number = parse_phone(f"whatsapp:{text}" if whatsapp else text)
    except InputError:
        assert not expected
    else:
        assert expected
        assert number.whatsapp is whatsapp


@settings(max_examples=100, deadline=None)
@given(possible_numbers, st.booleans())
def test_parse_phone_round_trips_its_own_output(e164: str, whatsapp: bool) -> None:
    """str(PhoneNumber) parses back to the same PhoneNumber."""
    number = PhoneNumber(e164, whatsapp)
    assert parse_phone(str(number)) == number


@pytest.mark.parametrize(
    ("text", "region", "rank"),
    [
        ("", "US", -1),
        ("+1 555", "US", -1),
        ("555-1234", "US", 0),
        ("+15551234567", "US", 1),
        ("+12025550123", "US", 2),
        ("020 7946", "GB", 1),
        ("020 7946 0958", "GB", 2),
        ("whatsapp:+12025550123", "US", 2),
    ],
)
def test_rank_phone_orders_readings_refused_local_possible_valid(text: str, region: str, rank: int) -> None:
    """rank_phone grades a reading so spaced numbers can be split; validity only breaks ties."""
    assert rank_phone(text, default_region=region) == rank


def test_a_number_parsed_again_is_the_same_and_a_refusal_is_refused_again() -> None:
    """Parses are remembered (the ack's path); refusals are not, so each one still gets its sentence."""
    first = parse_phone("+1 555 123 4567")
    assert parse_phone("+1 555 123 4567") == first == PhoneNumber("+15551234567")
    assert parse_phone("+1 555 123 4567", field="from") == first
    for _ in range(2):
        with pytest.raises(InputError, match="contains letters"):
            parse_phone("+1 555 CALL NOW")

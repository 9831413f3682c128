"""Parsing Twilio's JSON into Message, MessagePage and AccountInfo: forgiving on shape, strict on values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.twilio import AccountInfo, Message, MessagePage, TwilioError

SID = "SM" + "b7c0a2ce80504485a6f653a7110836f5"
ACCOUNT = "AC" + "a" * 32

# Twilio's own example for a fetched message (from the v2010 spec), unknown fields included.
FETCHED: dict[str, Any] = {
    "account_sid": ACCOUNT,
    "api_version": "2010-04-01",
    "body": "testing",
    "date_created": "Fri, 24 May 2019 17:18:27 +0000",
    "date_sent": "Fri, 24 May 2019 17:18:28 +0000",
    "date_updated": "Fri, 24 May 2019 17:18:28 +0000",
    "direction": "outbound-api",
    "error_code": 30007,
    "error_message": "Carrier violation",
    "from": "+12019235161",
    "messaging_service_sid": "MG" + "a" * 32,
    "num_media": "0",
    "num_segments": "1",
    "price": "-0.00750",
    "price_unit": "USD",
    "sid": SID,
    "status": "sent",
    "subresource_uris": {"media": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}/Media.json"},
    "to": "+18182008801",
    "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json",
}


def with_(**changes: object) -> dict[str, Any]:
    """FETCHED with some fields replaced (None values stay as JSON null)."""
    return {**FETCHED, **changes}


def without(*keys: str) -> dict[str, Any]:
    """FETCHED with some fields missing altogether."""
    return {k: v for k, v in FETCHED.items() if k not in keys}


def test_twilio_example_parses_into_typed_fields() -> None:
    """Counts become ints, the price a Decimal, dates aware UTC datetimes, `from` becomes from_."""
    message = Message.from_json(FETCHED)
    assert message.sid == SID and message.account_sid == ACCOUNT
    assert (message.to, message.from_, message.body, message.status) == (
        "+18182008801",
        "+12019235161",
        "testing",
        "sent",
    )
    assert message.num_segments == 1 and message.num_media == 0
    assert message.price == Decimal("-0.00750") and message.price_unit == "USD"
    assert message.error_code == 30007 and message.error_message == "Carrier violation"
    assert message.date_created == datetime(2019, 5, 24, 17, 18, 27, tzinfo=UTC)
    assert message.date_sent is not None and message.date_sent.tzinfo is UTC
    assert message.uri == FETCHED["uri"] and message.direction == "outbound-api"


def test_dates_in_other_offsets_become_utc() -> None:
    """An RFC 2822 date with a +0200 offset is the same instant in UTC."""
    message = Message.from_json(with_(date_created="Fri, 24 May 2019 19:18:27 +0200"))
    assert message.date_created == datetime(2019, 5, 24, 17, 18, 27, tzinfo=UTC)
    assert message.date_created is not None and message.date_created.tzinfo is UTC


def test_date_without_zone_information_is_taken_as_utc() -> None:
    """`-0000` (no zone information) is read as GMT, as Twilio means it, and still aware."""
    message = Message.from_json(with_(date_sent="Fri, 24 May 2019 17:18:28 -0000"))
    assert message.date_sent == datetime(2019, 5, 24, 17, 18, 28, tzinfo=UTC)


def test_nulls_are_tolerated() -> None:
    """A scheduled message has no date_sent, price, From or counts yet: None, not a crash."""
    nulls = dict.fromkeys(
        ["date_sent", "price", "price_unit", "from", "num_segments", "num_media", "error_code", "uri"]
    )
    message = Message.from_json(with_(**nulls, body=None, to=None, status="scheduled"))
    assert message.date_sent is None and message.price is None and message.from_ is None
    assert message.num_segments is None and message.num_media is None and message.error_code is None
    assert (message.body, message.to) == ("", "")


def test_missing_fields_are_tolerated() -> None:
    """Only the SID is required; everything else missing gets a neutral value."""
    message = Message.from_json({"sid": SID})
    assert message.sid == SID and message.status == "unknown" and message.body == ""
    assert message.date_created is None and message.messaging_service_sid is None


def test_unknown_fields_are_ignored() -> None:
    """Fields Twilio adds later do not break parsing."""
    message = Message.from_json(with_(brand_new_field={"nested": [1, 2]}, risk_check="enable"))
    assert message.sid == SID


@pytest.mark.parametrize(
    ("price", "expected"),
    [("-0.00750", Decimal("-0.00750")), ("0", Decimal(0)), (-0.0075, Decimal("-0.0075")), ("", None)],
)
def test_prices_are_decimals(price: object, expected: Decimal | None) -> None:
    """Prices keep their exact digits as Decimal; an empty price is None."""
    assert Message.from_json(with_(price=price)).price == expected


def test_numeric_fields_may_be_strings_or_numbers() -> None:
    """Twilio sends counts as strings and error codes as ints; either form parses."""
    message = Message.from_json(with_(num_segments=3, num_media="2", error_code="21610"))
    assert (message.num_segments, message.num_media, message.error_code) == (3, 2, 21610)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"date_created": "yesterday-ish"}, "date_created"),
        ({"date_sent": "2019-05-24T17:18:28Z"}, "date_sent"),
        ({"date_updated": 1558718308}, "date_updated"),
        ({"num_segments": "one"}, "num_segments"),
        ({"num_media": "1.5"}, "num_media"),
        ({"num_segments": "--1"}, "num_segments"),
        ({"error_code": True}, "error_code"),
        ({"price": "free"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": [1]}, "price"),
        ({"to": 15551234567}, "to"),
        ({"sid": None}, "sid"),
        ({"sid": ""}, "sid"),
    ],
)
def test_garbage_values_raise_twilio_error(changes: dict[str, object], complaint: str) -> None:
    """A value of the wrong kind is a TwilioError naming the field, never KeyError or ValueError."""
    with pytest.raises(TwilioError) as caught:
        Message.from_json(with_(**changes))
    assert complaint in str(caught.value) and "could not be understood" in str(caught.value)


@pytest.mark.parametrize("payload", [None, [], "message", 42, ["sid"]])
def test_a_message_that_is_not_an_object_raises_twilio_error(payload: object) -> None:
    """An answer that is not a JSON object is a TwilioError with a sentence."""
    with pytest.raises(TwilioError, match="not a JSON object"):
        Message.from_json(payload)


def test_missing_sid_raises_twilio_error() -> None:
    """A message without its SID cannot be acted on: a TwilioError, not KeyError."""
    with pytest.raises(TwilioError, match="'sid'"):
        Message.from_json(without("sid"))


def test_page_parses_messages_and_paging() -> None:
    """A list page keeps its messages in order, its next link, page number and size."""
    data = {
        "messages": [FETCHED, with_(sid="MM" + "c" * 32, body="second")],
        "next_page_uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json?PageSize=2&Page=1&PageToken=PA1",
        "page": 0,
        "page_size": 2,
        "first_page_uri": "ignored",
    }
    page = MessagePage.from_json(data)
    assert [m.body for m in page.messages] == ["testing", "second"]
    assert isinstance(page.messages, tuple) and page.page == 0 and page.page_size == 2
    assert page.next_page_uri == data["next_page_uri"]


def test_last_page_has_no_next_link() -> None:
    """A null or missing next_page_uri means there are no more pages."""
    assert MessagePage.from_json({"messages": [], "next_page_uri": None}).next_page_uri is None
    page = MessagePage.from_json({"messages": [FETCHED]})
    assert (page.next_page_uri, page.page, page.page_size) == (None, 0, 1)


@pytest.mark.parametrize("data", [{}, {"messages": None}, {"messages": {"a": 1}}, [FETCHED]])
def test_page_without_a_message_list_raises_twilio_error(data: object) -> None:
    """A list answer without a `messages` array is malformed."""
    with pytest.raises(TwilioError):
        MessagePage.from_json(data)


def test_a_bad_message_inside_a_page_raises_twilio_error() -> None:
    """One garbled message in a page fails the page with a TwilioError."""
    with pytest.raises(TwilioError, match="num_media"):
        MessagePage.from_json({"messages": [FETCHED, with_(num_media="many")]})


def test_account_info_drops_the_auth_token() -> None:
    """AccountInfo keeps sid, name, status and type, and never the auth token Twilio may include."""
    info = AccountInfo.from_json(
        {
            "auth_token": "the-real-token",
            "friendly_name": "Ops team",
            "sid": ACCOUNT,
            "status": "active",
            "type": "Trial",
        }
    )
    assert info == AccountInfo(sid=ACCOUNT, friendly_name="Ops team", status="active", type="Trial")
    assert "the-real-token" not in repr(info)


def test_account_info_tolerates_nulls_but_needs_a_sid() -> None:
    """Null name/type are fine; no SID is a TwilioError."""
    info = AccountInfo.from_json({"sid": ACCOUNT, "friendly_name": None, "status": None, "type": None})
    assert (info.friendly_name, info.status, info.type) == ("", "unknown", None)
    with pytest.raises(TwilioError):
        AccountInfo.from_json({"friendly_name": "x"})


def test_models_are_frozen() -> None:
    """Results crossing layers cannot be changed after parsing."""
    message = Message.from_json(FETCHED)
    with pytest.raises(AttributeError):
        message.status = "delivered"  # type: ignore[misc]


SPEC = Path(__file__).parents[1].parent / "shared" / "twilio-oai" / "twilio_messages_mock.json"


def spec_success_examples() -> list[dict[str, Any]]:
    """Every 2xx JSON example in Twilio's spec subset."""
    spec = json.loads(SPEC.read_text())
    found = []
    for item in spec["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for code, answer in operation.get("responses", {}).items():
                content = answer.get("content", {}).get("application/json", {})
                if code.startswith("2"):
                    found += [example["value"] for example in content.get("examples", {}).values()]
    return found


def test_every_message_example_in_twilios_spec_parses() -> None:
    """Each success example in Twilio's spec (create, fetch, update, list, account) parses."""
    if not SPEC.is_file():
        pytest.skip(f"Twilio's spec is not at {SPEC}")
    parsed = 0
    for value in spec_success_examples():
        if "messages" in value:
            parsed += len(MessagePage.from_json(value).messages)
        elif str(value.get("sid", "")).startswith(("SM", "MM")):
            Message.from_json(value)
            parsed += 1
        else:
            AccountInfo.from_json(value)
            parsed += 1
    assert parsed >= 5

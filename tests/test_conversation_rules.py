"""The conversation rules without Slack or Twilio: webhook fields, opt-out words, and the cards."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.conversations import InboundText, RouteView, inbound_problem, opt_change
from bot.slack.conversation_cards import ACTION_POINT, inbound_text_card, parse_point_value, route_card
from bot.twilio.models import IncomingNumber
from storage.conversations import InboundRow, Route

AC = "AC" + "1" * 32
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ROUTE = Route(
    id=1,
    team_id="T1",
    number="+15557654321",
    channel_id="C0SUPPORT1",
    account_label="main",
    account_sid=AC,
    created_by="U0ADMIN",
    created_at=AT,
)
PN = "PN" + "2" * 32
HERE = "https://bridge.example.com/twilio/inbound"


def form(**fields: str) -> dict[str, str]:
    """A complete webhook form with `fields` changed."""
    base = {"MessageSid": "SM" + "a" * 32, "AccountSid": AC, "From": "+15550001111", "To": ROUTE.number}
    base.update(fields)
    return {k: v for k, v in base.items() if v != "<drop>"}


@pytest.mark.parametrize("missing", ["MessageSid", "AccountSid", "From", "To"])
def test_a_form_without_a_required_field_is_named(missing: str) -> None:
    """The log line names the missing field."""
    problem = inbound_problem(form(**{missing: "<drop>"}))
    assert problem is not None and missing in problem


def test_a_complete_form_reads_as_a_text() -> None:
    """Optional fields default; NumMedia that is not a small number counts as none."""
    assert inbound_problem(form()) is None
    text = InboundText.from_form(form(Body="hi", NumMedia="x9", ProfileName="Ann"))
    assert (text.body, text.num_media, text.profile_name, text.opt_out_type) == ("hi", 0, "Ann", None)
    assert InboundText.from_form(form(NumMedia="2")).num_media == 2


@pytest.mark.parametrize(
    ("body", "kind", "expected"),
    [
        ("STOP", None, True),
        (" stopall ", None, True),
        ("Unsubscribe", None, True),
        ("cancel", None, True),
        ("END", None, True),
        ("quit", None, True),
        ("please stop texting me", None, None),
        ("arrêt", "STOP", True),
        ("START", None, False),
        ("unstop", None, False),
        ("yes", None, False),
        ("hello", "START", False),
        ("hello", None, None),
    ],
)
def test_opt_out_and_back_in_words(body: str, kind: str | None, expected: bool | None) -> None:
    """Twilio's keywords (whole body, any case) or its OptOutType decide."""
    text = InboundText("SM" + "a" * 32, AC, "+1", "+2", body, opt_out_type=kind)
    assert opt_change(text) is expected


def _number(sms_url: str | None, service: str | None = None) -> IncomingNumber:
    return IncomingNumber(PN, ROUTE.number, sms_url, "POST", service)


def _blocks_text(card: object) -> str:
    import json

    return json.dumps(card.blocks)  # type: ignore[attr-defined]


def test_the_route_card_offers_to_point_the_number_here_with_what_it_replaces() -> None:
    """With PUBLIC_URL: a button whose confirm dialog names the new URL and the one it replaces."""
    card = route_card(
        RouteView(ROUTE, _number("https://old.example.com/sms"), None, HERE), requested_by="U0ADMIN"
    )
    (actions,) = [b for b in card.blocks if b["type"] == "actions"]
    (button,) = actions["elements"]
    assert button["action_id"] == ACTION_POINT
    assert parse_point_value(button["value"]) == ROUTE.number
    dialog = button["confirm"]["text"]["text"]
    assert HERE in dialog and "https://old.example.com/sms" in dialog
    assert "https://old.example.com/sms" in _blocks_text(card)


def test_the_route_card_has_no_button_once_the_number_points_here() -> None:
    """The number already sends its texts here: it says so, and offers nothing."""
    card = route_card(RouteView(ROUTE, _number(HERE), None, HERE), requested_by="U0ADMIN")
    assert not [b for b in card.blocks if b["type"] == "actions"]
    assert "(here)" in _blocks_text(card)


def test_a_messaging_service_number_says_its_url_lives_on_the_service() -> None:
    """No button: the service's inbound URL decides, not the number's."""
    mg = "MG" + "3" * 32
    card = route_card(RouteView(ROUTE, _number(None, mg), None, HERE), requested_by="U0ADMIN")
    assert not [b for b in card.blocks if b["type"] == "actions"]
    text = _blocks_text(card)
    assert mg in text and "inbound URL" in text


def test_without_public_url_the_card_gives_the_console_step() -> None:
    """No button without PUBLIC_URL: the card says what to set in Twilio's console."""
    card = route_card(RouteView(ROUTE, _number(None), None, None), requested_by="U0ADMIN")
    assert not [b for b in card.blocks if b["type"] == "actions"]
    assert "/twilio/inbound" in _blocks_text(card) and "nowhere yet" in _blocks_text(card)


def test_a_failed_lookup_is_said_on_the_card() -> None:
    """The route stands; the card says why Twilio could not be asked."""
    card = route_card(RouteView(ROUTE, None, "Twilio is down", HERE), requested_by="U0ADMIN")
    assert "Twilio is down" in _blocks_text(card)


@pytest.mark.parametrize("raw", ["", "[]", '{"number": 5}', "not json", '{"number": "' + "9" * 70 + '"}'])
def test_a_point_button_value_that_is_not_ours_is_refused(raw: str) -> None:
    """A forged or damaged value raises ValueError, never KeyError."""
    with pytest.raises(ValueError):
        parse_point_value(raw)


def test_a_text_card_shows_the_body_as_typed_and_escaped() -> None:
    """Mentions stay text, markup is not applied (a code block), and the time is given."""
    body = "<!here> _hi_ & ```"
    row = InboundRow(
        id=1,
        message_sid="SM" + "a" * 32,
        account_sid=AC,
        team_id="T1",
        our_number=ROUTE.number,
        their_number="+1555",
        body=body,
        profile_name=None,
        opt_out_type=None,
        num_media=2,
        received_at=AT,
        state="received",
        conversation_id=None,
    )
    card = inbound_text_card(row)
    text = _blocks_text(card)
    assert "&lt;!here&gt;" in text and "<!here>" not in text and "&amp;" in text
    assert "Received" in text and "2 attachment(s) below" in text
    assert "<!here>" not in card.text


def test_an_incoming_number_reads_its_messaging_service_from_the_application_sid() -> None:
    """Twilio shows a service number's MG SID as sms_application_sid; an AP app is not a service."""
    base = {"sid": PN, "phone_number": ROUTE.number, "sms_url": "", "sms_method": "post"}
    plain = IncomingNumber.from_json({**base, "sms_application_sid": "AP" + "1" * 32})
    assert (plain.sms_url, plain.sms_method, plain.service_sid) == (None, "POST", None)
    service = IncomingNumber.from_json({**base, "sms_application_sid": "MG" + "3" * 32})
    assert service.service_sid == "MG" + "3" * 32


@pytest.mark.parametrize("data", [[], {"sid": PN}, {"incoming_phone_numbers": "x"}])
def test_a_malformed_number_answer_is_a_twilio_error(data: object) -> None:
    """Not a number, or a list that is not a list: TwilioError with a sentence, never KeyError."""
    from bot.twilio.errors import TwilioError

    with pytest.raises(TwilioError):
        IncomingNumber.from_json(data)
    with pytest.raises(TwilioError):
        IncomingNumber.list_from_json(data)

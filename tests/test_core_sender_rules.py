"""The rules about who sends and what a list can filter, each one function in bot.core.rules."""

from __future__ import annotations

import pytest

from bot.core.errors import InputError
from bot.core.phone import PhoneNumber
from bot.core.rules import schedule_service, scheduled_list_problems, sender_for, sender_or_service

SMS_TO = PhoneNumber("+15551234567")
WA_TO = PhoneNumber("+15551234567", whatsapp=True)
SMS_FROM = PhoneNumber("+15557654321")
WA_FROM = PhoneNumber("+15557654321", whatsapp=True)
SERVICE = "MG" + "0123456789abcdef" * 2


@pytest.mark.parametrize(
    ("to", "sender", "expected"),
    [
        (SMS_TO, None, None),
        (SMS_TO, SMS_FROM, SMS_FROM),
        (WA_TO, SMS_FROM, WA_FROM),
        (WA_TO, WA_FROM, WA_FROM),
    ],
)
def test_sender_for_puts_the_sender_on_the_recipients_channel(
    to: PhoneNumber, sender: PhoneNumber | None, expected: PhoneNumber | None
) -> None:
    """A WhatsApp recipient gets a WhatsApp sender; an SMS one keeps its sender."""
    assert sender_for(to, sender) == expected


def test_sender_for_refuses_a_whatsapp_sender_to_an_sms_number() -> None:
    """An SMS recipient cannot have a WhatsApp sender: a sentence on To saying how to write it."""
    with pytest.raises(InputError) as info:
        sender_for(SMS_TO, WA_FROM)
    assert info.value.field == "to"
    assert "whatsapp:+15551234567" in info.value.message


@pytest.mark.parametrize(
    ("sender", "default_from", "default_service", "expected"),
    [
        ("+15550000001", "+15557654321", SERVICE, ("+15550000001", None)),
        (None, "+15557654321", SERVICE, ("+15557654321", None)),
        (None, None, SERVICE, (None, SERVICE)),
    ],
)
def test_sender_or_service_prefers_the_given_sender_then_the_defaults(
    sender: str | None, default_from: str | None, default_service: str | None, expected: tuple[str, str]
) -> None:
    """The sender given wins, then the account's From number, then its Messaging Service."""
    assert (
        sender_or_service("main", sender=sender, default_from=default_from, default_service=default_service)
        == expected
    )


def test_sender_or_service_without_any_default_asks_for_a_sender() -> None:
    """No sender and no default: a sentence on From naming the account."""
    with pytest.raises(InputError) as info:
        sender_or_service("main", sender=None, default_from=None, default_service=None)
    assert info.value.field == "from"
    assert "main has no default From number" in info.value.message


def test_schedule_service_needs_a_messaging_service() -> None:
    """Scheduling goes through the service given, else the default; with neither, a sentence on it."""
    assert schedule_service("main", service=SERVICE, default_service=None) == SERVICE
    assert schedule_service("main", service=None, default_service=SERVICE) == SERVICE
    with pytest.raises(InputError) as info:
        schedule_service("main", service=None, default_service=None)
    assert info.value.field == "service"
    assert "Messaging Service" in info.value.message


def test_a_list_of_scheduled_messages_takes_no_filters() -> None:
    """Each filter given to a list of scheduled messages is one problem, on its own field."""
    assert scheduled_list_problems(to=False, from_=False, date=False) == []
    problems = scheduled_list_problems(to=True, from_=True, date=True)
    assert [p.field for p in problems] == ["to", "from", "date"]
    assert all("only without filters" in p.message for p in problems)

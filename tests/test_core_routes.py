"""The route grammar: /twilio route, routes and unroute."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core import requests as rq
from bot.core.commands import parse_command
from bot.core.errors import CommandError
from bot.core.phone import PhoneNumber

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
OURS = PhoneNumber("+15557654321")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("route +15557654321 <#C0SUPPORT1|support>", rq.RouteCommand(OURS, "C0SUPPORT1")),
        ("route +15557654321 C0SUPPORT1 --account main", rq.RouteCommand(OURS, "C0SUPPORT1", "main")),
        ("ROUTE (555) 765-4321 <#G0PRIVATE1>", rq.RouteCommand(OURS, "G0PRIVATE1")),
        (
            "route whatsapp:+15557654321 <#C0SUPPORT1|support>",
            rq.RouteCommand(PhoneNumber("+15557654321", whatsapp=True), "C0SUPPORT1"),
        ),
        ("routes", rq.RoutesCommand()),
        ("unroute +15557654321", rq.UnrouteCommand(OURS)),
        ("unroute whatsapp:+15557654321", rq.UnrouteCommand(PhoneNumber("+15557654321", whatsapp=True))),
    ],
)
def test_route_commands_parse(text: str, expected: object) -> None:
    """Numbers are read as E.164 (or whatsapp:), channels by their ID."""
    assert parse_command(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        ("route", "number", "which of our numbers"),
        ("route +15557654321", "channel", "which of our numbers and which channel"),
        ("route +15557654321 #support", "channel", "as plain text"),
        ("route +15557654321 support", "channel", "is not a channel"),
        ("route hello <#C0SUPPORT1|support>", "number", "number"),
        ("route +15557654321 <#C0SUPPORT1> extra", None, "Unexpected"),
        ("route +15557654321 <#C0SUPPORT1> --account 'no spaces here'", "account", ""),
        ("routes now", None, "Unexpected"),
        ("unroute", "number", "which number"),
        ("unroute 12", "number", ""),
    ],
)
def test_route_commands_refuse_bad_input(text: str, field: str | None, needle: str) -> None:
    """Each mistake gets a sentence naming the field, and the usage line."""
    with pytest.raises(CommandError) as info:
        parse_command(text, now=NOW)
    assert info.value.field == field
    assert needle in info.value.message
    assert info.value.usage.startswith("/twilio " + text.split()[0].lower())


def test_send_and_schedule_take_repeated_media_links() -> None:
    """--media may be given up to ten times; the links are kept in order and cut from the body."""
    cmd = parse_command(
        "send +15551234567 look --media https://a.example/1.jpg here --media=https://a.example/2.png", now=NOW
    )
    assert isinstance(cmd, rq.SendCommand)
    assert cmd.body == "look here"
    assert cmd.media == ("https://a.example/1.jpg", "https://a.example/2.png")
    sched = parse_command("schedule +15551234567 in 1h hi --media https://a.example/x.gif", now=NOW)
    assert isinstance(sched, rq.ScheduleCommand) and sched.media == ("https://a.example/x.gif",)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("send +15551234567 hi --media photo.jpg", "is not a media link"),
        ("send +15551234567 hi --media ftp://a.example/x", "is not a media link"),
        (
            "send +15551234567 hi " + " ".join(f"--media https://a.example/{n}" for n in range(11)),
            "at most 10",
        ),
        ("send +15551234567 hi --account main --account other", "given twice"),
    ],
)
def test_bad_media_links_are_refused(text: str, needle: str) -> None:
    """A link that is not http(s), or more than ten, is refused before anything is sent."""
    with pytest.raises(CommandError) as info:
        parse_command(text, now=NOW)
    assert needle in info.value.message

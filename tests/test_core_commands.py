"""The /twilio text grammar: requests, prefilled Incompletes, and CommandErrors with usage."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import requests as rq
from bot.core.commands import DESCRIPTIONS, SUBCOMMANDS, USAGE, parse_command
from bot.core.errors import CommandError
from bot.core.phone import PhoneNumber
from bot.core.rules import DEFAULT_WINDOW

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TO = PhoneNumber("+15551234567")
FROM = PhoneNumber("+15557654321")
WA_TO = PhoneNumber("+15551234567", whatsapp=True)
WA_FROM = PhoneNumber("+15557654321", whatsapp=True)
SID = "SM0123456789abcdef0123456789abcdef"
MG = "MG0123456789abcdef0123456789abcdef"


def parse(text: str) -> rq.Command:
    """parse_command with the fixed clock."""
    return parse_command(text, now=NOW)


def assert_refused(text: str, field: str | None, phrase: str) -> None:
    """`text` raises CommandError: a sentence with `phrase`, the field, and its subcommand's usage line."""
    with pytest.raises(CommandError) as info:
        parse(text)
    assert phrase in info.value.message
    assert info.value.field == field
    assert info.value.usage == USAGE[text.split()[0].replace("_", "-")]


# --- help -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", rq.HelpCommand(None)),
        ("   \n ", rq.HelpCommand(None)),
        ("help", rq.HelpCommand(None)),
        ("HELP", rq.HelpCommand(None)),
        ("--help", rq.HelpCommand(None)),
        ("-h", rq.HelpCommand(None)),
        ("?", rq.HelpCommand(None)),
        ("help send", rq.HelpCommand("send")),
        ("help Schedule", rq.HelpCommand("schedule")),
        ("help log_channel", rq.HelpCommand("log-channel")),
        ("help nonsense words", rq.HelpCommand("nonsense")),
        ("sned +15551234567 hi", rq.HelpCommand("sned")),
        ("Bogus", rq.HelpCommand("bogus")),
        ("send --help", rq.HelpCommand("send")),
        ("schedule +15551234567 -h", rq.HelpCommand("schedule")),
        ("list --HELP", rq.HelpCommand("list")),
    ],
)
def test_help_and_unknown_subcommands_give_help(text: str, expected: rq.HelpCommand) -> None:
    """Empty text, help, --help and unknown words all answer with help; topic says which."""
    assert parse(text) == expected


def test_quoted_help_flag_is_body_text() -> None:
    """A quoted "--help" is part of the message, not a request for help."""
    assert parse('send +15551234567 "--help"') == rq.SendCommand(TO, "--help")


def test_subcommands_usage_and_descriptions_cover_each_other() -> None:
    """Every subcommand has exactly one usage line and one description, in help order."""
    assert set(SUBCOMMANDS) == set(USAGE) == set(DESCRIPTIONS)
    assert len(SUBCOMMANDS) == len(set(SUBCOMMANDS))
    assert SUBCOMMANDS[0] == "help"
    for name in SUBCOMMANDS:
        assert USAGE[name].startswith(f"/twilio {name}")
        assert DESCRIPTIONS[name].endswith(".")
        assert "\n" not in USAGE[name] + DESCRIPTIONS[name]


@pytest.mark.parametrize("name", [n for n in SUBCOMMANDS if n != "help"])
def test_every_subcommand_word_is_parsed_not_treated_as_unknown(name: str) -> None:
    """No listed subcommand falls through to HelpCommand(topic=name)."""
    try:
        result = parse(name)
    except CommandError:
        return
    assert result != rq.HelpCommand(name)


# --- setup, accounts, history, log-channel --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("setup", rq.SetupCommand()),
        ("SETUP", rq.SetupCommand()),
        ("accounts", rq.AccountsCommand()),
        ("history", rq.HistoryCommand(10)),
        ("history 1", rq.HistoryCommand(1)),
        ("history 50", rq.HistoryCommand(50)),
        ("history 007", rq.HistoryCommand(7)),
        ("log-channel <#C0123ABCD|ops>", rq.LogChannelCommand("C0123ABCD")),
        ("log-channel <#C0123ABCD>", rq.LogChannelCommand("C0123ABCD")),
        ("log-channel <#G0123ABCD|private-ops>", rq.LogChannelCommand("G0123ABCD")),
        ("log-channel C0123ABCDEF", rq.LogChannelCommand("C0123ABCDEF")),
        ("log_channel <#C0123ABCD|ops>", rq.LogChannelCommand("C0123ABCD")),
        ("log-channel off", rq.LogChannelCommand(None)),
        ("log-channel OFF", rq.LogChannelCommand(None)),
        ("log-channel none", rq.LogChannelCommand(None)),
    ],
)
def test_simple_subcommands(text: str, expected: rq.Command) -> None:
    """Subcommands with no or one simple argument parse to their requests."""
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "field", "phrase"),
    [
        ("setup now", None, "Unexpected “now”"),
        ("accounts all", None, "Unexpected “all”"),
        ("accounts --account main", None, "takes no options like --account"),
        ("history 0", "limit", "must be from 1 to 50, not 0"),
        ("history 51", "limit", "must be from 1 to 50, not 51"),
        ("history ten", "limit", "is not a whole number"),
        ("history -5", "limit", "is not a whole number"),
        ("history 5 6", None, "Unexpected “6”"),
        ("history --limit 5", None, "takes no options like --limit"),
        ("log-channel", "channel", "Say which channel"),
        ("log-channel #ops", "channel", "without the channel's ID"),
        ("log-channel ops", "channel", "is not a channel"),
        ("log-channel <#C0123ABCD|ops> <#C0123ABCE|dev>", None, "Unexpected"),
        ("log-channel <@U0123ABCD|bob>", "channel", "is not a channel"),
    ],
)
def test_simple_subcommand_errors(text: str, field: str | None, phrase: str) -> None:
    """Extra words and bad values get a sentence and the subcommand's usage line."""
    assert_refused(text, field, phrase)


# --- send -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("send +15551234567 hello", rq.SendCommand(TO, "hello")),
        ("Send +15551234567 Hello there", rq.SendCommand(TO, "Hello there")),
        ("send +15551234567 hello  world", rq.SendCommand(TO, "hello  world")),
        (
            "send +15551234567 line one\nline two\n\nline four",
            rq.SendCommand(TO, "line one\nline two\n\nline four"),
        ),
        ("send +15551234567   \n  padded  \n ", rq.SendCommand(TO, "padded")),
        ("send +15551234567 tab\tinside", rq.SendCommand(TO, "tab\tinside")),
        ("send (555) 123-4567 hi", rq.SendCommand(TO, "hi")),
        ("send 555-123-4567 hi", rq.SendCommand(TO, "hi")),
        ("send +1 555 123 4567 hi", rq.SendCommand(TO, "hi")),
        ("send +1 (555) 123-4567 Your code is 1234", rq.SendCommand(TO, "Your code is 1234")),
        ("send +15551234567 1234 is your code", rq.SendCommand(TO, "1234 is your code")),
        ("send +15551234567 2 for 1 today", rq.SendCommand(TO, "2 for 1 today")),
        ('send "+1 555 123 4567" hi', rq.SendCommand(TO, "hi")),
        ("send whatsapp:+15551234567 hi", rq.SendCommand(WA_TO, "hi")),
        ("send WhatsApp:+15551234567 hi", rq.SendCommand(WA_TO, "hi")),
        ("send whatsapp: +15551234567 hi", rq.SendCommand(WA_TO, "hi")),
        ("send whatsapp: +1 555 123 4567 hi", rq.SendCommand(WA_TO, "hi")),
        ("send +15551234567 hi --from +15557654321", rq.SendCommand(TO, "hi", FROM)),
        ("send +15551234567 --from +15557654321 hi", rq.SendCommand(TO, "hi", FROM)),
        ("send --from +15557654321 +15551234567 hi", rq.SendCommand(TO, "hi", FROM)),
        ("send +15551234567 hi --from +15557654321 there", rq.SendCommand(TO, "hi there", FROM)),
        ("send +15551234567 hi\n--from +15557654321\nthere", rq.SendCommand(TO, "hi\nthere", FROM)),
        ("send +15551234567 hi --from +1 555 765 4321", rq.SendCommand(TO, "hi", FROM)),
        ("send +15551234567 hi --from=+15557654321", rq.SendCommand(TO, "hi", FROM)),
        ('send +15551234567 hi --from="+1 555 765 4321"', rq.SendCommand(TO, "hi", FROM)),
        ("send +15551234567 hi --FROM +15557654321", rq.SendCommand(TO, "hi", FROM)),
        ("send +15551234567 hi —from +15557654321", rq.SendCommand(TO, "hi", FROM)),
        ("send +15551234567 hi –from +15557654321", rq.SendCommand(TO, "hi", FROM)),
        ("send +15551234567 hi --account main", rq.SendCommand(TO, "hi", None, "main")),
        (
            "send +15551234567 hi --account US-Sales_2 --from +15557654321",
            rq.SendCommand(TO, "hi", FROM, "us-sales_2"),
        ),
        ("send whatsapp:+15551234567 hi --from +15557654321", rq.SendCommand(WA_TO, "hi", WA_FROM)),
        ("send whatsapp:+15551234567 hi --from whatsapp:+15557654321", rq.SendCommand(WA_TO, "hi", WA_FROM)),
    ],
)
def test_send_parses_number_body_and_flags(text: str, expected: rq.SendCommand) -> None:
    """TO is normalised, flags may sit anywhere, and the body keeps its inner spacing."""
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ('send +15551234567 "hello world"', "hello world"),
        ('send +15551234567 "  spaced  out  "', "  spaced  out  "),
        ('send +15551234567 "hello" world', '"hello" world'),
        ('send +15551234567 say "hi" now', 'say "hi" now'),
        ("send +15551234567 “curly quoted”", "curly quoted"),
        ("send +15551234567 'single quoted'", "single quoted"),
        ('send +15551234567 "multi\nline"', "multi\nline"),
        ('send +15551234567 "hello world" --from +15557654321', "hello world"),
        ("send +15551234567 don't forget", "don't forget"),
        ("send +15551234567 it's Bob's car", "it's Bob's car"),
        ("send +15551234567 'unbalanced quote", "'unbalanced quote"),
        ('send +15551234567 unbalanced" quote', 'unbalanced" quote'),
        ('send +15551234567 "--from is text here"', "--from is text here"),
        ("send +15551234567 a -- b", "a -- b"),
        ("send +15551234567 -5 degrees", "-5 degrees"),
        ("send +15551234567 Bye —Tom", "Bye —Tom"),
        ("send +15551234567 ---", "---"),
        ("send +15551234567 50% off &amp; more", "50% off & more"),
        ("send +15551234567 a &lt;b&gt; c", "a <b> c"),
        ("send +15551234567 &amp;lt; stays", "&lt; stays"),
        ("send +15551234567 visit <https://example.com|example.com>", "visit example.com"),
        ("send +15551234567 visit <https://example.com>", "visit https://example.com"),
        ("send +15551234567 mail <mailto:a@example.com|a@example.com>", "mail a@example.com"),
        ("send +15551234567 call <tel:+15550001111|+1 555 000 1111>", "call +15550001111"),
        ("send +15551234567 hi <@U0123|bob> in <#C0123|ops>", "hi @bob in #ops"),
        ("send +15551234567 hi <!here> <!channel>", "hi @here @channel"),
        ("send +15551234567 ping <!subteam^S0123|@oncall>", "ping @oncall"),
        ("send +15551234567 😀 emoji", "😀 emoji"),
    ],
)
def test_send_body_quoting_and_slack_escapes(text: str, body: str) -> None:
    """Quotes are stripped only when they wrap the whole body; Slack escapes and links are undone."""
    result = parse(text)
    assert isinstance(result, rq.SendCommand)
    assert result.body == body


@pytest.mark.parametrize(
    "text",
    [
        "send <tel:+15551234567|+1 555 123 4567> hi",
        "send <tel:+15551234567> hi",
        "send +15551234567 hi --from <tel:+15557654321|+1 555 765 4321>",
    ],
)
def test_send_unwraps_slack_tel_links(text: str) -> None:
    """Slack's <tel:…|…> formatting around a number is removed before parsing."""
    result = parse(text)
    assert isinstance(result, rq.SendCommand)
    assert result.to == TO
    assert result.body == "hi"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("send", rq.Incomplete("send", {}, None)),
        ("send   ", rq.Incomplete("send", {}, None)),
        ("send +15551234567", rq.Incomplete("send", {"to": "+15551234567"}, None)),
        ("send +1 555 123 4567", rq.Incomplete("send", {"to": "+1 555 123 4567"}, None)),
        ("send whatsapp:+15551234567", rq.Incomplete("send", {"to": "whatsapp:+15551234567"}, None)),
        ("send --from +15557654321", rq.Incomplete("send", {"from": "+15557654321"}, None)),
        (
            "send +15551234567 --from +15557654321 --account main",
            rq.Incomplete("send", {"to": "+15551234567", "from": "+15557654321", "account": "main"}, None),
        ),
        ("send --account main", rq.Incomplete("send", {"account": "main"}, None)),
    ],
)
def test_send_without_required_arguments_opens_a_prefilled_modal(text: str, expected: rq.Incomplete) -> None:
    """Missing TO or BODY gives Incomplete with the raw text that was given."""
    assert parse(text) == expected


@pytest.mark.parametrize("quotes", ['""', "“”", "''"])
def test_send_with_empty_quoted_body_is_refused(quotes: str) -> None:
    """A body that is just empty quotes is an empty body, not a missing one."""
    with pytest.raises(CommandError, match="The message body is empty") as info:
        parse(f"send +15551234567 {quotes}")
    assert info.value.field == "body"


def test_typed_angle_brackets_are_not_slack_formatting() -> None:
    """A user-typed <tel:…> arrives escaped, so it stays text and is refused as a number."""
    with pytest.raises(CommandError, match="contains letters"):
        parse("send &lt;tel:+15551234567&gt; hi")


@pytest.mark.parametrize(
    ("text", "prefill", "phrase"),
    [
        ("send +1555", {"to": "+1555"}, "too short"),
        ("send hello", {"to": "hello"}, "contains letters"),
        ("send --from 12", {"from": "12"}, "The From number “12” is too short"),
        (
            "send +15551234567 --account 'bad label'",
            {"to": "+15551234567", "account": "bad label"},
            "may use only",
        ),
    ],
)
def test_incomplete_send_reports_the_first_invalid_value(
    text: str, prefill: dict[str, str], phrase: str
) -> None:
    """Values given beside a missing argument are prefilled and their problem is named."""
    result = parse(text)
    assert isinstance(result, rq.Incomplete)
    assert result.subcommand == "send"
    assert dict(result.prefill) == prefill
    assert result.problem is not None and phrase in result.problem


@pytest.mark.parametrize(
    ("text", "field", "phrase"),
    [
        ("send +1555 hi", "to", "The To number “+1555” is too short"),
        ("send hello world", "to", "contains letters"),
        ("send 1-800-FLOWERS hi", "to", "contains letters"),
        ("send +999 1234567 hi", "to", "unknown country code"),
        ("send +15551234567 hi --from 12", "from", "The From number"),
        ("send +15551234567 hi --from", "from", "--from needs a value"),
        ("send +15551234567 hi --from --account main", "from", "--from needs a value"),
        ("send +15551234567 hi --from=", "from", "--from needs a value"),
        ("send +15551234567 hi --from +15557654321 --from +15557654321", "from", "--from is given twice"),
        ("send +15551234567 hi --account a --account b", "account", "--account is given twice"),
        ("send +15551234567 hi --to +15557654321", None, "Unknown option --to"),
        (
            "send +15551234567 hi --urgent",
            None,
            "Unknown option --urgent; /twilio send takes --from, --account and --media",
        ),
        ("send +15551234567 hi --service " + MG, None, "Unknown option --service"),
        ("send +15551234567 hi --account ''", "account", "--account needs a value"),
        ("send +15551234567 hi --account " + "a" * 41, "account", "41 characters long"),
        ("send +15551234567 hi --account main/prod", "account", "may use only"),
        # The label rule is storage's: a label with a dot could never be stored, so it never parses.
        ("send +15551234567 hi --account us.sales", "account", "may use only"),
        ("send +15551234567 hi --account " + "a" * 33, "account", "use at most 32"),
        ("send +15551234567 " + "x" * 1601, "body", "1 over Twilio's limit of 1,600"),
        ("send +15551234567 hi\x00there", "body", "control character U+0000"),
        ("send +15551234567 hi --from whatsapp:+15557654321", "to", "A WhatsApp sender can only message"),
    ],
)
def test_send_errors_name_the_field_and_show_usage(text: str, field: str | None, phrase: str) -> None:
    """Bad numbers, flags and bodies raise CommandError with a sentence, the field and send's usage."""
    assert_refused(text, field, phrase)


def test_send_body_at_the_limit_is_accepted() -> None:
    """Exactly 1600 characters is a valid body."""
    result = parse("send +15551234567 " + "x" * 1600)
    assert isinstance(result, rq.SendCommand)
    assert len(result.body) == 1600


@pytest.mark.parametrize(
    ("text", "region", "to", "body"),
    [
        ("send 020 7946 0958 hi", "GB", "+442079460958", "hi"),
        ("send 02079460958 hi", "GB", "+442079460958", "hi"),
        ("send +44 20 7946 0958 10 for 1", "US", "+442079460958", "10 for 1"),
        ("send 03012345678 Hallo", "DE", "+493012345678", "Hallo"),
        ("send (555) 123-4567 1234 is your code", "US", "+15551234567", "1234 is your code"),
        ("send 555 123 4567 hi", "US", "+15551234567", "hi"),
        ("send +1 555 1234 567 hi", "US", "+15551234567", "hi"),  # "+1 555 1234" is only locally possible
        ("send +12025550123 2 for 1", "US", "+12025550123", "2 for 1"),
        ("send 555-1234 hi", "US", "+15551234", "hi"),
    ],
)
def test_send_places_spaced_national_numbers_with_the_default_region(
    text: str, region: str, to: str, body: str
) -> None:
    """A number typed in groups is read whole when one reading is clearly best."""
    result = parse_command(text, now=NOW, default_region=region)
    assert result == rq.SendCommand(PhoneNumber(to), body)


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("send +49 30 1234 5678 100 Euro", "DE"),
        ("send 030 1234 5678 Hallo", "DE"),
        ("send +4930123456 78 x", "DE"),
    ],
)
def test_send_refuses_to_guess_between_two_readings_of_a_spaced_number(text: str, region: str) -> None:
    """When two groupings are equally plausible numbers, the user is asked instead of guessed for."""
    with pytest.raises(CommandError, match="The number is unclear") as info:
        parse_command(text, now=NOW, default_region=region)
    assert info.value.field == "to"


def test_send_and_schedule_take_repeated_media_links() -> None:
    """--media may be given up to ten times; the links are kept in order and cut from the body."""
    cmd = parse("send +15551234567 look --media https://a.example/1.jpg here --media=https://a.example/2.png")
    assert isinstance(cmd, rq.SendCommand)
    assert cmd.body == "look here"
    assert cmd.media == ("https://a.example/1.jpg", "https://a.example/2.png")
    sched = parse("schedule +15551234567 in 1h hi --media https://a.example/x.gif")
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
        parse(text)
    assert needle in info.value.message


# --- schedule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("schedule +15551234567 in 2h hello", rq.ScheduleCommand(TO, NOW + timedelta(hours=2), "hello")),
        ("schedule +15551234567 in2h hello", rq.ScheduleCommand(TO, NOW + timedelta(hours=2), "hello")),
        ("schedule +15551234567 in 2 h hello", rq.ScheduleCommand(TO, NOW + timedelta(hours=2), "hello")),
        ("schedule +15551234567 IN 30M hello", rq.ScheduleCommand(TO, NOW + timedelta(minutes=30), "hello")),
        ("schedule +15551234567 in 3d hello", rq.ScheduleCommand(TO, NOW + timedelta(days=3), "hello")),
        ("schedule +15551234567 in 15m hi", rq.ScheduleCommand(TO, NOW + timedelta(minutes=15), "hi")),
        ("schedule +15551234567 in 35d hi", rq.ScheduleCommand(TO, NOW + timedelta(days=35), "hi")),
        (
            "schedule +15551234567 2026-05-02T10:00:00Z hi",
            rq.ScheduleCommand(TO, datetime(2026, 5, 2, 10, 0, tzinfo=UTC), "hi"),
        ),
        (
            "schedule +15551234567 2026-05-02 10:00:00Z hi",
            rq.ScheduleCommand(TO, datetime(2026, 5, 2, 10, 0, tzinfo=UTC), "hi"),
        ),
        (
            "schedule +15551234567 2026-05-02T12:00:00+02:00 hi",
            rq.ScheduleCommand(TO, datetime(2026, 5, 2, 10, 0, tzinfo=UTC), "hi"),
        ),
        (
            "schedule +1 555 123 4567 in 2h Your code is 1234",
            rq.ScheduleCommand(TO, NOW + timedelta(hours=2), "Your code is 1234"),
        ),
        (
            f"schedule +15551234567 in 2h hi --service {MG} --account main",
            rq.ScheduleCommand(TO, NOW + timedelta(hours=2), "hi", MG, "main"),
        ),
        (
            f"schedule --service {MG.upper()[:2] + MG[2:].upper()} +15551234567 in 2h hi",
            rq.ScheduleCommand(TO, NOW + timedelta(hours=2), "hi", MG),
        ),
        (
            "schedule whatsapp:+15551234567 in 2h in the morning",
            rq.ScheduleCommand(WA_TO, NOW + timedelta(hours=2), "in the morning"),
        ),
        (
            'schedule +15551234567 in 2h "  exact  "',
            rq.ScheduleCommand(TO, NOW + timedelta(hours=2), "  exact  "),
        ),
        (
            "schedule +15551234567 in 2h 2 for 1\ntoday",
            rq.ScheduleCommand(TO, NOW + timedelta(hours=2), "2 for 1\ntoday"),
        ),
    ],
)
def test_schedule_parses_number_time_and_body(text: str, expected: rq.ScheduleCommand) -> None:
    """WHEN may be one to three words; the body follows it."""
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("schedule", rq.Incomplete("schedule", {}, None)),
        ("schedule +15551234567", rq.Incomplete("schedule", {"to": "+15551234567"}, None)),
        (
            "schedule +15551234567 in 2h",
            rq.Incomplete("schedule", {"to": "+15551234567", "send_at": "in 2h"}, None),
        ),
        (
            "schedule +15551234567 in 2 h",
            rq.Incomplete("schedule", {"to": "+15551234567", "send_at": "in 2 h"}, None),
        ),
        (
            "schedule +15551234567 2026-05-02T10:00:00Z",
            rq.Incomplete("schedule", {"to": "+15551234567", "send_at": "2026-05-02T10:00:00Z"}, None),
        ),
        (
            f"schedule --service {MG} --account main",
            rq.Incomplete("schedule", {"service": MG, "account": "main"}, None),
        ),
    ],
)
def test_schedule_without_required_arguments_opens_a_prefilled_modal(
    text: str, expected: rq.Incomplete
) -> None:
    """Missing TO, WHEN or BODY gives Incomplete with prefill keys to, send_at, service, account."""
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("schedule +15551234567 in 5m", "too soon"),
        ("schedule +15551234567 in 40d", "too far ahead"),
        ("schedule +1555 in 2h", "too short"),
        ("schedule --service MG123", "has 3 hex characters after MG, not 32"),
        ("schedule +15551234567 2026-05-02T10:00:00", "has no time zone"),
    ],
)
def test_incomplete_schedule_reports_the_first_invalid_value(text: str, phrase: str) -> None:
    """A bad time or number beside a missing body is named in the Incomplete's problem."""
    result = parse(text)
    assert isinstance(result, rq.Incomplete)
    assert result.problem is not None and phrase in result.problem


@pytest.mark.parametrize(
    ("text", "field", "phrase"),
    [
        ("schedule +15551234567 tomorrow hi", "send_at", "“tomorrow” is not a send time"),
        ("schedule +15551234567 hi there", "send_at", "“hi” is not a send time"),
        ("schedule +15551234567 in 2 hours hi", "send_at", "“in 2 hours” is not a delay"),
        ("schedule +15551234567 in 30 minutes hi", "send_at", "“in 30 minutes” is not a delay"),
        ("schedule +15551234567 in 30 hi", "send_at", "“in 30” is not a send time"),
        ("schedule +15551234567 in 2 weeks hi", "send_at", "“in 2 weeks” is not a delay"),
        ("schedule +15551234567 in hi", "send_at", "“in” is not a send time"),
        ("schedule +15551234567 in 5m hi", "send_at", "at least 15 minutes from now"),
        ("schedule +15551234567 in 36d hi", "send_at", "latest allowed time is 2026-06-05T12:00:00Z"),
        ("schedule +15551234567 2026-05-02T10:00:00 hi", "send_at", "has no time zone; add Z"),
        ("schedule +15551234567 2026-04-01T10:00:00Z hi", "send_at", "is in the past"),
        ("schedule +1555 in 2h hi", "to", "too short"),
        ("schedule +15551234567 in 2h hi --service MG123", "service", "has 3 hex characters after MG"),
        ("schedule +15551234567 in 2h hi --service " + SID, "service", "is a message SID, not a Messaging"),
        ("schedule +15551234567 in 2h hi --from +15557654321", None, "Unknown option --from"),
        ("schedule +15551234567 in 2h hi --service", "service", "--service needs a value"),
        ("schedule +15551234567 in 2h " + "é" * 1601, "body", "over Twilio's limit"),
        ("schedule +15551234567 in 2h \x07", "body", "control character"),
    ],
)
def test_schedule_errors_name_the_field_and_show_usage(text: str, field: str | None, phrase: str) -> None:
    """Bad times, numbers, services and bodies raise CommandError with schedule's usage."""
    assert_refused(text, field, phrase)


def test_schedule_honours_the_callers_window() -> None:
    """A window passed to parse_command reaches the send-at check."""
    soon = replace(DEFAULT_WINDOW, min_ahead=timedelta(minutes=1))
    result = parse_command("schedule +15551234567 in 5m hi", now=NOW, window=soon)
    assert isinstance(result, rq.ScheduleCommand)
    assert result.send_at == NOW + timedelta(minutes=5)
    short = replace(DEFAULT_WINDOW, max_ahead=timedelta(days=7))
    with pytest.raises(CommandError, match="at most 7 days ahead"):
        parse_command("schedule +15551234567 in 8d hi", now=NOW, window=short)


# --- list -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("list", rq.ListCommand()),
        ("list scheduled", rq.ListCommand(scheduled_only=True)),
        ("list SCHEDULED", rq.ListCommand(scheduled_only=True)),
        (
            "list scheduled --limit 5 --account main",
            rq.ListCommand(limit=5, account="main", scheduled_only=True),
        ),
        ("list --to +15551234567", rq.ListCommand(to=TO)),
        ("list --to +1 555 123 4567 --limit 5", rq.ListCommand(to=TO, limit=5)),
        ("list --from whatsapp:+15557654321", rq.ListCommand(from_=WA_FROM)),
        ("list --date 2026-04-30", rq.ListCommand(date_sent=date(2026, 4, 30))),
        ("list --limit 1000", rq.ListCommand(limit=1000)),
        ("list --limit=3", rq.ListCommand(limit=3)),
        (
            "list --to +15551234567 --from +15557654321 --date 2026-04-30 --limit 50 --account main",
            rq.ListCommand(TO, FROM, date(2026, 4, 30), 50, "main", False),
        ),
    ],
)
def test_list_parses_filters(text: str, expected: rq.ListCommand) -> None:
    """Filters are optional flags; limit defaults to 20."""
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "field", "phrase"),
    [
        ("list +15551234567", None, "Unexpected “+15551234567”"),
        ("list scheduled now", None, "Unexpected “now”"),
        ("list scheduled --to +15551234567", "to", "scheduled messages cannot be filtered by To"),
        ("list scheduled --from +15551234567", "from", "cannot be filtered by From"),
        ("list scheduled --date 2026-04-30", "date", "cannot be filtered by date"),
        ("list --limit 0", "limit", "from 1 to 1000, not 0"),
        ("list --limit 1001", "limit", "from 1 to 1000, not 1001"),
        ("list --limit lots", "limit", "is not a whole number"),
        ("list --date 30/04/2026", "date", "is not a date"),
        ("list --date 2026-02-30", "date", "is not a real date"),
        ("list --to 12", "to", "too short"),
        ("list --from abc", "from", "contains letters"),
        ("list --service " + MG, None, "Unknown option --service"),
        ("list --to", "to", "--to needs a value"),
        ("list --limit 5 --limit 6", "limit", "--limit is given twice"),
    ],
)
def test_list_errors_name_the_field_and_show_usage(text: str, field: str | None, phrase: str) -> None:
    """Bad filters raise CommandError with list's usage."""
    assert_refused(text, field, phrase)


# --- fetch, cancel, delete ------------------------------------------------------------------------

SID_COMMANDS = [("fetch", rq.FetchCommand), ("cancel", rq.CancelCommand), ("delete", rq.DeleteCommand)]


@pytest.mark.parametrize(("name", "cls"), SID_COMMANDS)
@pytest.mark.parametrize(
    ("args", "sid", "account"),
    [
        (SID, SID, None),
        ("MM" + SID[2:], "MM" + SID[2:], None),
        (SID.upper(), SID, None),
        (f"{SID} --account main", SID, "main"),
        (f"--account main {SID}", SID, "main"),
        (f'"{SID}"', SID, None),
    ],
)
def test_sid_subcommands_parse_the_sid(
    name: str,
    cls: type[rq.FetchCommand | rq.CancelCommand | rq.DeleteCommand],
    args: str,
    sid: str,
    account: str | None,
) -> None:
    """fetch, cancel and delete take one message SID, normalised, and an optional account."""
    assert parse(f"{name} {args}") == cls(sid, account)


@pytest.mark.parametrize("name", ["fetch", "cancel", "delete"])
def test_sid_subcommands_without_sid_open_a_modal(name: str) -> None:
    """A missing SID gives Incomplete, keeping the account given."""
    assert parse(name) == rq.Incomplete(name, {}, None)
    assert parse(f"{name} --account main") == rq.Incomplete(name, {"account": "main"}, None)
    result = parse(f"{name} --account bad/label")
    assert isinstance(result, rq.Incomplete)
    assert result.problem is not None and "may use only" in result.problem


@pytest.mark.parametrize("name", ["fetch", "cancel", "delete"])
@pytest.mark.parametrize(
    ("args", "field", "phrase"),
    [
        ("SMx", "sid", "is not a message SID"),
        ("AC" + SID[2:], "sid", "is an account SID, not a message SID"),
        (SID[:-1], "sid", "has 31 hex characters"),
        (f"{SID} {SID}", None, "Unexpected"),
        (f"{SID} --from +15551234567", None, "Unknown option --from"),
        (f"{SID} --account", "account", "--account needs a value"),
    ],
)
def test_sid_subcommand_errors(name: str, args: str, field: str | None, phrase: str) -> None:
    """Bad SIDs and extra words raise CommandError with that subcommand's usage."""
    assert_refused(f"{name} {args}", field, phrase)


# --- route, routes, unroute -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("route +15557654321 <#C0SUPPORT1|support>", rq.RouteCommand(FROM, "C0SUPPORT1")),
        ("route +15557654321 C0SUPPORT1 --account main", rq.RouteCommand(FROM, "C0SUPPORT1", "main")),
        ("ROUTE (555) 765-4321 <#G0PRIVATE1>", rq.RouteCommand(FROM, "G0PRIVATE1")),
        ("route whatsapp:+15557654321 <#C0SUPPORT1|support>", rq.RouteCommand(WA_FROM, "C0SUPPORT1")),
        ("routes", rq.RoutesCommand()),
        ("unroute +15557654321", rq.UnrouteCommand(FROM)),
        ("unroute whatsapp:+15557654321", rq.UnrouteCommand(WA_FROM)),
    ],
)
def test_route_commands_parse(text: str, expected: rq.Command) -> None:
    """Our numbers are read as E.164 (or whatsapp:), channels by their ID."""
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "field", "phrase"),
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
def test_route_commands_refuse_bad_input(text: str, field: str | None, phrase: str) -> None:
    """Each mistake gets a sentence naming the field, and the usage line."""
    assert_refused(text, field, phrase)


# --- properties -----------------------------------------------------------------------------------

WORDS = [
    *SUBCOMMANDS,
    "scheduled",
    "+15551234567",
    "+1",
    "555",
    "123",
    "4567",
    "(555)",
    "whatsapp:",
    "whatsapp:+15551234567",
    "in",
    "2h",
    "30",
    "m",
    "15m",
    "36d",
    "--from",
    "--to",
    "--account",
    "--date",
    "--limit",
    "--service",
    "--from=",
    "—from",
    "--help",
    "--bogus",
    '"',
    "'",
    "“",
    "”",
    "hi",
    "&amp;",
    "&lt;",
    "<tel:+15551234567|+1 555>",
    "<#C0123ABCD|ops>",
    "<@U1|x>",
    "2026-05-02T10:00:00Z",
    "2026-05-02",
    "10:00Z",
    MG,
    SID,
    "main",
    "off",
    "\n",
    "\x00",
    "😀",
    "5",
    "0",
]
command_text = st.one_of(
    st.text(),
    st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=4)), max_size=14).map("".join),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=4)), max_size=14).map(" ".join),
)
COMMAND_TYPES = (
    rq.HelpCommand,
    rq.SetupCommand,
    rq.AccountsCommand,
    rq.SendCommand,
    rq.ScheduleCommand,
    rq.ListCommand,
    rq.FetchCommand,
    rq.CancelCommand,
    rq.DeleteCommand,
    rq.HistoryCommand,
    rq.LogChannelCommand,
    rq.RouteCommand,
    rq.RoutesCommand,
    rq.UnrouteCommand,
    rq.Incomplete,
)


@settings(max_examples=1500, deadline=None)
@given(command_text)
def test_parse_command_returns_a_command_or_raises_command_error(text: str) -> None:
    """Any text gives a request or a CommandError with a sentence and a known usage line."""
    try:
        result = parse(text)
    except CommandError as err:
        assert err.message.endswith(".")
        assert err.usage in USAGE.values()
    else:
        assert isinstance(result, COMMAND_TYPES)


@settings(max_examples=500, deadline=None)
@given(command_text)
def test_parsed_requests_hold_only_valid_values(text: str) -> None:
    """Whatever parses is within Twilio's rules: bodies 1–1600, times in the window, limits in range."""
    try:
        result = parse(text)
    except CommandError:
        return
    if isinstance(result, rq.SendCommand | rq.ScheduleCommand):
        assert 1 <= len(result.body) <= 1600
        assert result.body.strip()
    if isinstance(result, rq.ScheduleCommand):
        assert NOW + timedelta(minutes=15) <= result.send_at <= NOW + timedelta(days=35)
        assert result.send_at.microsecond == 0
    if isinstance(result, rq.ListCommand):
        assert 1 <= result.limit <= 1000
    if isinstance(result, rq.HistoryCommand):
        assert 1 <= result.limit <= 50
    if isinstance(result, rq.Incomplete):
        assert set(result.prefill) <= {
            "to",
            "from",
            "body",
            "send_at",
            "service",
            "account",
            "sid",
            "date",
            "limit",
        }


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200))
def test_quoted_body_round_trips_exactly(body: str) -> None:
    """A body wrapped in double quotes arrives exactly as written (when it has text and no ")."""
    if '"' in body or "”" in body or not body.strip():
        return
    escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    result = parse(f'send +15551234567 "{escaped}"')
    assert isinstance(result, rq.SendCommand)
    assert result.body == body


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=30
    )
)
def test_single_word_body_round_trips(word: str) -> None:
    """One unquoted word after the number is the body, unchanged (after Slack's escapes are undone)."""
    if word.startswith(("-", "—", "–", '"', "'", "“", "‘")) or "<" in word or "&" in word:
        return
    result = parse(f"send +15551234567 {word}")
    assert isinstance(result, rq.SendCommand)
    assert result.body == word


# --- layering ---------------------------------------------------------------------------------------


def test_core_imports_nothing_of_ours_outside_core_and_never_reads_the_clock() -> None:
    """bot.core stays pure: only stdlib, phonenumbers and bot.core imports; no datetime.now()."""
    import ast
    from pathlib import Path

    import bot.core

    root = Path(bot.core.__file__).parent
    sources = sorted(root.glob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "errors.py", "phone.py", "rules.py", "commands.py"}
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                top = node.module.split(".")[0]
                assert top not in {"bot", "storage"} or node.module.startswith("bot.core"), (
                    path,
                    node.module,
                )
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in {"bot", "storage"}, (path, alias.name)
            if isinstance(node, ast.Attribute):
                assert (
                    node.attr not in {"now", "utcnow", "today", "time"}
                    or not isinstance(node.value, ast.Name)
                    or node.value.id not in {"datetime", "date", "time"}
                ), (path, node.attr)

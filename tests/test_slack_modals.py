"""Modal forms: views within Slack's limits, submissions parsed or refused field by field, round trips."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from builders import ACCOUNT_SID, NOW, SERVICE, USER, stored_account
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import requests as rq
from bot.core.commands import parse_command
from bot.core.errors import InputError
from bot.core.phone import PhoneNumber
from bot.slack.forms import FieldErrors, parse_submission
from bot.slack.modals import (
    ACTION_ID,
    BODY_HINT,
    CALLBACKS,
    FIELDS,
    ModalMetadata,
    build_modal,
    prefill_from_command,
)
from bot.workspace import AccountSetup
from storage.accounts import StoredAccount

META = ModalMetadata(
    channel_id="C0123ABCD", response_url="https://hooks.slack.com/commands/T1/1/abc", user_id=USER
)
OTHER_SERVICE = "MG" + "fedcba9876543210" * 2
SID = "SM" + "0123456789abcdef" * 2
KEY_SID = "SK" + "0123456789abcdef" * 2
TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def make_account(label: str, **changes: Any) -> StoredAccount:
    """A stored account with a default sender and Messaging Service; not the default unless said."""
    return stored_account(label, **({"is_default": False} | changes))


ONE = (make_account("main", is_default=True),)
THREE = (
    make_account("main", id=1, is_default=True),
    make_account("us-sales", id=2, default_from=None, default_service_sid=None),
    make_account("eu", id=3, default_from="+447700900123", default_service_sid=OTHER_SERVICE),
)
TWILIO_FORMS = [sub for sub in CALLBACKS if sub != "setup"]


# ── helpers: what Slack would send back ──────────────────────────────────────────────────────────────


def inputs(view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The view's input blocks by block_id."""
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def submit(view: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """The `state.values` Slack sends when the form is submitted as shown, with `changes` typed in.

    A change is the raw value for the field: text for inputs (None clears), a label for selects,
    "YYYY-MM-DD" for dates, unix seconds for the date-time picker, a bool for checkboxes.
    """
    values: dict[str, Any] = {}
    for block_id, block in inputs(view).items():
        element = block["element"]
        kind = element["type"]
        changed = block_id in changes
        new = changes.get(block_id)
        if kind == "plain_text_input":
            state: dict[str, Any] = {"value": new if changed else element.get("initial_value")}
        elif kind == "static_select":
            option = element.get("initial_option")
            if changed:
                option = next((o for o in element["options"] if o["value"] == new), None)
                if option is None and new is not None:
                    option = {"text": {"type": "plain_text", "text": new}, "value": new}
            state = {"selected_option": option}
        elif kind == "datepicker":
            state = {"selected_date": new if changed else element.get("initial_date")}
        elif kind == "datetimepicker":
            state = {"selected_date_time": new if changed else element.get("initial_date_time")}
        elif kind == "checkboxes":
            selected = element.get("initial_options") or []
            if changed:
                selected = element["options"] if new else []
            state = {"selected_options": selected}
        else:
            raise AssertionError(f"unexpected element {kind}")
        values[block_id] = {ACTION_ID: {"type": kind, **state}}
    unknown = set(changes) - set(values)
    assert not unknown, f"no such inputs: {unknown}"
    return values


def form(sub: str, accounts: Sequence[StoredAccount] = ONE, **prefill: str) -> dict[str, Any]:
    """The view for `sub` with `prefill`."""
    return build_modal(sub, accounts=accounts, prefill=prefill, metadata=META, now=NOW)


def parse(sub: str, values: Mapping[str, Any], accounts: Sequence[StoredAccount] = ONE) -> Any:
    """parse_submission for the form of `sub`."""
    return parse_submission(CALLBACKS[sub], values, accounts=accounts, now=NOW)


def errors_of(sub: str, values: Mapping[str, Any], accounts: Sequence[StoredAccount] = ONE) -> dict[str, str]:
    """The field errors parse_submission raises for these values."""
    with pytest.raises(FieldErrors) as caught:
        parse(sub, values, accounts)
    assert caught.value.errors, "FieldErrors without any error"
    assert all(isinstance(v, str) and v for v in caught.value.errors.values())
    return caught.value.errors


def assert_keys_are_inputs(sub: str, errors: Mapping[str, str], accounts: Sequence[StoredAccount]) -> None:
    """Slack accepts only errors keyed by input block_ids of the open view."""
    assert set(errors) <= set(inputs(form(sub, accounts))), errors


# ── building the views ───────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("accounts", [ONE, THREE], ids=["one account", "three accounts"])
@pytest.mark.parametrize("sub", list(CALLBACKS))
def test_every_modal_fits_slack_limits(sub: str, accounts: Sequence[StoredAccount]) -> None:
    """Every form builds with one and with three accounts, within Slack's view limits."""
    view = form(sub, accounts)
    assert view["type"] == "modal"
    assert view["callback_id"] == CALLBACKS[sub]
    assert 1 <= len(view["title"]["text"]) <= 24
    assert 1 <= len(view["submit"]["text"]) <= 24
    assert 1 <= len(view["close"]["text"]) <= 24
    assert 1 <= len(view["blocks"]) <= 100
    assert view["private_metadata"] == META.to_json()
    assert len(view["private_metadata"]) <= 3000
    assert len(json.dumps(view)) < 20_000
    for block_id, block in inputs(view).items():
        assert block_id in FIELDS
        assert block["element"]["action_id"] == ACTION_ID
        assert len(block["label"]["text"]) <= 2000
        assert block["element"].get("max_length", 0) <= 3000


def test_callbacks_cover_every_form() -> None:
    """The documented callback IDs: each form's is `twilio_` and its subcommand."""
    forms = ("send", "schedule", "list", "fetch", "cancel", "delete", "setup")
    assert {sub: f"twilio_{sub}" for sub in forms} == CALLBACKS


@pytest.mark.parametrize("sub", TWILIO_FORMS)
def test_without_accounts_a_form_explains_setup(sub: str) -> None:
    """No account yet: the form says how to add one and cannot be submitted."""
    view = form(sub, ())
    assert "submit" not in view
    assert inputs(view) == {}
    assert "/twilio setup" in json.dumps(view)


def test_unknown_subcommand_has_no_form() -> None:
    """Asking for a form we do not have is a programming error."""
    with pytest.raises(ValueError):
        form("history")


def test_account_select_only_when_there_is_a_choice() -> None:
    """One account is named in a line; several give a select starting at the default."""
    assert "account" not in inputs(form("send", ONE))
    assert "Twilio account: *main*" in json.dumps(form("send", ONE), ensure_ascii=False)
    select = inputs(form("send", THREE))["account"]["element"]
    assert select["type"] == "static_select"
    assert [o["value"] for o in select["options"]] == ["main", "us-sales", "eu"]
    assert select["initial_option"]["value"] == "main"
    assert select["options"][0]["text"]["text"] == "main (default)"


def test_prefilled_account_is_selected() -> None:
    """The --account given on the command line starts selected."""
    select = inputs(form("fetch", THREE, account="EU"))["account"]["element"]
    assert select["initial_option"]["value"] == "eu"


def test_prefilled_unknown_account_is_flagged() -> None:
    """A label that names no account is called out on the form."""
    text = json.dumps(form("fetch", THREE, account="nope"), ensure_ascii=False)
    assert "There is no account called nope" in text


def test_send_form_fields() -> None:
    """To has the placeholder, From starts at the default sender, Body allows 1600 with the segment hint."""
    fields = inputs(form("send", ONE, to="+15551234567"))
    assert fields["to"]["element"]["initial_value"] == "+15551234567"
    assert fields["to"]["element"]["placeholder"]["text"] == "+15551234567 or whatsapp:+1…"
    assert fields["from"]["element"]["initial_value"] == "+15557654321"
    assert fields["from"]["optional"] is True
    body = fields["body"]
    assert body["element"]["multiline"] is True
    assert body["element"]["max_length"] == 1600
    assert body["hint"]["text"] == BODY_HINT
    assert "160 GSM-7 characters per segment (70 with emoji or non-Latin characters); up to 1600" in BODY_HINT


def test_send_form_with_several_accounts_leaves_from_empty() -> None:
    """With a choice of account, From is left empty so it follows whichever account is picked."""
    assert "initial_value" not in inputs(form("send", THREE))["from"]["element"]


def test_schedule_form_starts_an_hour_ahead_with_the_default_service() -> None:
    """Send at defaults to now + 1 hour; the service to the account's default."""
    fields = inputs(form("schedule", ONE))
    assert fields["send_at"]["element"]["type"] == "datetimepicker"
    assert fields["send_at"]["element"]["initial_date_time"] == int((NOW + timedelta(hours=1)).timestamp())
    assert "15 minutes to 35 days ahead" in fields["send_at"]["hint"]["text"]
    assert fields["service"]["element"]["initial_value"] == SERVICE


@pytest.mark.parametrize(
    ("send_at", "expected"),
    [
        ("in 2h", NOW + timedelta(hours=2)),
        ("2026-03-05T15:00:00Z", datetime(2026, 3, 5, 15, tzinfo=UTC)),
        ("2027-01-01T00:00:00Z", datetime(2027, 1, 1, tzinfo=UTC)),  # outside the window: shown as typed
        ("in 90d", None),
        ("whenever", None),
    ],
)
def test_schedule_form_prefills_send_at(send_at: str, expected: datetime | None) -> None:
    """A prefilled send time starts the picker when it reads as a time; otherwise the user picks."""
    element = inputs(form("schedule", ONE, send_at=send_at))["send_at"]["element"]
    assert element.get("initial_date_time") == (int(expected.timestamp()) if expected else None)


def test_list_form_fields() -> None:
    """List has optional filters, a page size of 20 by default, and says how to see scheduled messages."""
    view = form("list", ONE, date="2026-02-01")
    fields = inputs(view)
    assert all(fields[b]["optional"] for b in ("to", "from", "date", "limit"))
    assert fields["date"]["element"]["initial_date"] == "2026-02-01"
    assert fields["limit"]["element"]["initial_value"] == "20"
    assert "Leave To, From and Date empty to include scheduled messages not yet sent." in json.dumps(view)


def test_list_form_ignores_a_bad_prefilled_date() -> None:
    """A date that is not one does not break the picker."""
    assert "initial_date" not in inputs(form("list", ONE, date="2026-02-30"))["date"]["element"]


@pytest.mark.parametrize("sub", ["fetch", "cancel", "delete"])
def test_sid_forms(sub: str) -> None:
    """Fetch, cancel and delete ask for the message SID."""
    fields = inputs(form(sub, ONE, sid=SID))
    assert fields["sid"]["element"]["initial_value"] == SID


def test_setup_form_never_prefills_secrets() -> None:
    """Secrets in a prefill are ignored; the label defaults to main; the first account becomes default."""
    view = build_modal(
        "setup",
        accounts=(),
        prefill={"auth_token": "tok-SECRET", "api_secret": "sec-SECRET", "account_sid": ACCOUNT_SID},
        metadata=META,
        now=NOW,
    )
    text = json.dumps(view)
    assert "SECRET" not in text
    fields = inputs(view)
    assert fields["label"]["element"]["initial_value"] == "main"
    assert fields["account_sid"]["element"]["initial_value"] == ACCOUNT_SID
    assert fields["make_default"]["element"]["initial_options"]
    assert set(fields) >= {"label", "account_sid", "auth_token", "api_key_sid", "api_secret", "default_from"}


def test_setup_form_with_accounts_does_not_preselect_default() -> None:
    """Adding a second account leaves the default where it is unless asked."""
    assert "initial_options" not in inputs(form("setup", ONE))["make_default"]["element"]


def test_problem_is_shown_escaped() -> None:
    """An Incomplete's problem sentence appears on top, escaped."""
    view = build_modal("send", accounts=ONE, prefill={}, metadata=META, now=NOW, problem="bad <!channel>")
    assert "bad &lt;!channel&gt;" in view["blocks"][0]["elements"][0]["text"]


# ── metadata ─────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "meta",
    [
        META,
        ModalMetadata(channel_id="", response_url=None, user_id=USER),
        ModalMetadata(
            channel_id="D0123", response_url="http://127.0.0.1:8080/respond/1", user_id="W0123ABCD"
        ),
    ],
)
def test_metadata_round_trip(meta: ModalMetadata) -> None:
    """to_json and from_json are inverses."""
    assert ModalMetadata.from_json(meta.to_json()) == meta


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "x",
        "[]",
        "null",
        json.dumps({"channel_id": "C1", "user_id": USER}),
        json.dumps({"channel_id": "C1", "response_url": None, "user_id": USER, "secret": "x"}),
        json.dumps({"channel_id": 1, "response_url": None, "user_id": USER}),
        json.dumps({"channel_id": "C1", "response_url": None, "user_id": "<!channel>"}),
        json.dumps({"channel_id": "C1 <x>", "response_url": None, "user_id": USER}),
        json.dumps({"channel_id": "C1", "response_url": "javascript:alert(1)", "user_id": USER}),
        json.dumps({"channel_id": "C1", "response_url": "https://x y", "user_id": USER}),
        json.dumps({"channel_id": "C1", "response_url": "https://" + "x" * 2990, "user_id": USER}),
        "{" + " " * 3001 + "}",
    ],
)
def test_metadata_refuses_garbage(raw: str) -> None:
    """Anything to_json could not have written raises InputError."""
    with pytest.raises(InputError):
        ModalMetadata.from_json(raw)


def test_metadata_refuses_non_text() -> None:
    """A missing private_metadata is refused too."""
    with pytest.raises(InputError):
        ModalMetadata.from_json(None)


# ── send ─────────────────────────────────────────────────────────────────────────────────────────────


def test_send_as_shown_uses_the_default_sender() -> None:
    """With one account, the form's prefilled From is what gets sent."""
    values = submit(form("send"), to="(555) 123-4567", body="Hello\nthere")
    cmd = parse("send", values)
    assert cmd == rq.SendCommand(
        to=PhoneNumber("+15551234567"),
        body="Hello\nthere",
        from_=PhoneNumber("+15557654321"),
        account="main",
    )


def test_send_with_a_chosen_account() -> None:
    """With several accounts the chosen label travels in the command."""
    values = submit(
        form("send", THREE), account="us-sales", to="+15551234567", **{"from": "+15550001111"}, body="x"
    )
    cmd = parse("send", values, THREE)
    assert cmd == rq.SendCommand(
        to=PhoneNumber("+15551234567"), body="x", from_=PhoneNumber("+15550001111"), account="us-sales"
    )


def test_send_whatsapp_makes_the_sender_whatsapp() -> None:
    """A WhatsApp recipient gets a WhatsApp sender."""
    values = submit(form("send"), to="whatsapp:+15551234567", body="hi")
    cmd = parse("send", values)
    assert cmd.from_ == PhoneNumber("+15557654321", whatsapp=True)
    assert cmd.to == PhoneNumber("+15551234567", whatsapp=True)


def test_send_whatsapp_sender_to_sms_number_is_refused() -> None:
    """A WhatsApp sender cannot text an SMS number."""
    values = submit(form("send"), to="+15551234567", body="hi", **{"from": "whatsapp:+15557654321"})
    assert set(errors_of("send", values)) == {"to"}


def test_send_reports_every_bad_field_at_once() -> None:
    """Bad To, bad From and an empty body are reported together, keyed by block_id."""
    values = submit(form("send"), to="12", body="   ", **{"from": "call me"})
    errors = errors_of("send", values)
    assert set(errors) == {"to", "from", "body"}
    assert_keys_are_inputs("send", errors, ONE)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"to": None}, "to"),
        ({"to": "+1555abc"}, "to"),
        ({"to": "+1 555"}, "to"),
        ({"body": None}, "body"),
        ({"body": "x" * 1601}, "body"),
        ({"body": "bell\x07"}, "body"),
        ({"from": "+1"}, "from"),
    ],
)
def test_send_invalid_field(changes: dict[str, Any], field: str) -> None:
    """Each invalid field is reported on its own block."""
    values = submit(form("send"), **{"to": "+15551234567", "body": "hi", **changes})
    assert set(errors_of("send", values)) == {field}


def test_send_without_any_sender_asks_for_from() -> None:
    """An account with no default sender or service needs a From number."""
    values = submit(form("send", THREE), account="us-sales", to="+15551234567", body="hi")
    errors = errors_of("send", values, THREE)
    assert set(errors) == {"from"}
    assert "us-sales" in errors["from"]


def test_send_with_only_a_default_service_needs_no_from() -> None:
    """An account with a default Messaging Service can send without From."""
    accounts = (make_account("main", is_default=True, default_from=None),)
    values = submit(form("send", accounts), to="+15551234567", body="hi")
    assert parse("send", values, accounts).from_ is None


# ── schedule ─────────────────────────────────────────────────────────────────────────────────────────


def test_schedule_as_shown() -> None:
    """The default time and the default service make a valid schedule."""
    values = submit(form("schedule"), to="+15551234567", body="later")
    cmd = parse("schedule", values)
    assert cmd == rq.ScheduleCommand(
        to=PhoneNumber("+15551234567"),
        send_at=NOW + timedelta(hours=1),
        body="later",
        service=SERVICE,
        account="main",
    )
    assert cmd.send_at.tzinfo is not None


def test_schedule_with_empty_service_uses_the_account_default() -> None:
    """An empty service field leaves the choice to the account's default."""
    values = submit(form("schedule"), to="+15551234567", body="later", service=None)
    assert parse("schedule", values).service is None


def test_schedule_needs_a_service_somewhere() -> None:
    """Without a service in the field or on the account, scheduling is refused on the service field."""
    values = submit(form("schedule", THREE), account="us-sales", to="+15551234567", body="later")
    errors = errors_of("schedule", values, THREE)
    assert set(errors) == {"service"}
    assert "Messaging Service" in errors["service"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"send_at": None}, "send_at"),
        ({"send_at": int((NOW + timedelta(minutes=5)).timestamp())}, "send_at"),
        ({"send_at": int((NOW - timedelta(days=1)).timestamp())}, "send_at"),
        ({"send_at": int((NOW + timedelta(days=36)).timestamp())}, "send_at"),
        ({"send_at": 10**15}, "send_at"),
        ({"service": "MG123"}, "service"),
        ({"service": ACCOUNT_SID}, "service"),
        ({"to": "not a number"}, "to"),
        ({"body": ""}, "body"),
    ],
)
def test_schedule_invalid_field(changes: dict[str, Any], field: str) -> None:
    """Each invalid schedule field is reported on its own block."""
    values = submit(form("schedule"), **{"to": "+15551234567", "body": "later", **changes})
    errors = errors_of("schedule", values)
    assert set(errors) == {field}
    assert_keys_are_inputs("schedule", errors, ONE)


def test_schedule_reports_every_bad_field_at_once() -> None:
    """All of To, Body, Send at and service at once."""
    values = submit(form("schedule"), to="x", body=None, send_at=None, service="nope")
    assert set(errors_of("schedule", values)) == {"to", "body", "send_at", "service"}


# ── list ─────────────────────────────────────────────────────────────────────────────────────────────


def test_list_as_shown() -> None:
    """An untouched list form lists 20 messages from the shown account."""
    assert parse("list", submit(form("list"))) == rq.ListCommand(limit=20, account="main")


def test_list_with_every_filter() -> None:
    """Filters come back typed."""
    values = submit(
        form("list"), to="+15551234567", date="2026-02-01", limit="100", **{"from": "+15557654321"}
    )
    assert parse("list", values) == rq.ListCommand(
        to=PhoneNumber("+15551234567"),
        from_=PhoneNumber("+15557654321"),
        date_sent=date(2026, 2, 1),
        limit=100,
        account="main",
    )


def test_list_empty_page_size_means_the_default() -> None:
    """A cleared page size falls back to 20."""
    assert parse("list", submit(form("list"), limit=None)).limit == 20


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"date": "2026-02-30"}, "date"),
        ({"date": "yesterday"}, "date"),
        ({"to": "abc"}, "to"),
        ({"from": "+1"}, "from"),
    ],
)
def test_list_invalid_field(changes: dict[str, Any], field: str) -> None:
    """Each invalid list field is reported on its own block."""
    errors = errors_of("list", submit(form("list"), **changes))
    assert set(errors) == {field}


def test_list_scheduled_only() -> None:
    """The scheduled box lists scheduled messages; it refuses filters Twilio would not honour."""
    assert parse("list", submit(form("list"), scheduled=True)).scheduled_only is True
    values = submit(form("list"), scheduled=True, to="+15551234567", date="2026-02-01")
    assert set(errors_of("list", values)) == {"to", "date"}


# ── fetch, cancel, delete ───────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("sub", "kind"), [("fetch", rq.FetchCommand), ("cancel", rq.CancelCommand), ("delete", rq.DeleteCommand)]
)
def test_sid_forms_parse(sub: str, kind: type) -> None:
    """A pasted SID (spaces, upper-case hex) comes back canonical in the right command."""
    values = submit(form(sub, THREE), account="eu", sid=f"  {SID[:2]}{SID[2:].upper()} ")
    assert parse(sub, values, THREE) == kind(sid=SID, account="eu")


@pytest.mark.parametrize("sid", [None, "SM123", ACCOUNT_SID, "hello", "SM" + "g" * 32])
@pytest.mark.parametrize("sub", ["fetch", "cancel", "delete"])
def test_sid_forms_refuse_bad_sids(sub: str, sid: str | None) -> None:
    """A missing or malformed SID is reported on the sid block."""
    assert set(errors_of(sub, submit(form(sub), sid=sid))) == {"sid"}


# ── accounts at submission time ─────────────────────────────────────────────────────────────────────


def test_account_removed_since_the_form_opened() -> None:
    """A selected label that no longer exists is reported on the account block."""
    values = submit(form("fetch", THREE), account="eu", sid=SID)
    errors = errors_of("fetch", values, THREE[:2])
    assert set(errors) == {"account"}


def test_account_select_left_empty() -> None:
    """With a choice to make and nothing chosen, the account block says so."""
    values = submit(form("fetch", THREE), account=None, sid=SID)
    assert set(errors_of("fetch", values, THREE)) == {"account"}


def test_no_accounts_left_at_submission() -> None:
    """If every account was removed, the error lands on an input that exists."""
    values = submit(form("send"), to="+15551234567", body="x")
    errors = errors_of("send", values, ())
    assert set(errors) == {"to"}
    assert "/twilio setup" in errors["to"]


# ── setup ────────────────────────────────────────────────────────────────────────────────────────────


def test_setup_with_auth_token() -> None:
    """Label, Account SID and Auth Token make an AccountSetup; the secret stays out of repr."""
    values = submit(form("setup", ()), account_sid=ACCOUNT_SID, auth_token=f" {TOKEN} ", label="Main")
    sub = parse("setup", values, ())
    assert sub == AccountSetup(
        label="main",
        account_sid=ACCOUNT_SID,
        secret=TOKEN,
        api_key_sid=None,
        default_from=None,
        default_service_sid=None,
        make_default=True,
    )
    assert TOKEN not in repr(sub)


def test_setup_with_api_key_and_defaults() -> None:
    """An API key with its secret, plus a default sender and service."""
    values = submit(
        form("setup", ONE),
        label="eu",
        account_sid=ACCOUNT_SID,
        api_key_sid=KEY_SID,
        api_secret="abcdefghijklmnopqrstuvwxyz012345",
        default_from="whatsapp:+15557654321",
        default_service=SERVICE,
        make_default=True,
    )
    sub = parse("setup", values, ONE)
    assert sub.api_key_sid == KEY_SID
    assert sub.secret == "abcdefghijklmnopqrstuvwxyz012345"
    assert sub.default_from == "whatsapp:+15557654321"
    assert sub.default_service_sid == SERVICE
    assert sub.make_default is True
    assert sub.webhook_token is None


def test_setup_with_an_api_key_keeps_the_auth_token_for_webhooks_only() -> None:
    """With an API key, an Auth Token given too is the webhook token; the key's secret stays the secret."""
    values = submit(
        form("setup", ()),
        account_sid=ACCOUNT_SID,
        auth_token=TOKEN,
        api_key_sid=KEY_SID,
        api_secret="abcdefghijklmnopqrstuvwxyz012345",
    )
    sub = parse("setup", values, ONE)
    assert sub.api_key_sid == KEY_SID
    assert sub.secret == "abcdefghijklmnopqrstuvwxyz012345"
    assert sub.webhook_token == TOKEN
    assert TOKEN not in repr(sub)


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({}, {"auth_token"}),
        ({"auth_token": "short", "api_key_sid": KEY_SID, "api_secret": TOKEN}, {"auth_token"}),
        ({"api_key_sid": KEY_SID}, {"api_secret"}),
        ({"api_secret": TOKEN}, {"api_key_sid"}),
        ({"api_key_sid": "SK123", "api_secret": TOKEN}, {"api_key_sid"}),
        ({"auth_token": "short"}, {"auth_token"}),
        ({"auth_token": TOKEN, "account_sid": None}, {"account_sid"}),
        ({"auth_token": TOKEN, "account_sid": SID}, {"account_sid"}),
        ({"auth_token": TOKEN, "label": "has spaces"}, {"label"}),
        ({"auth_token": TOKEN, "label": None}, {"label"}),
        ({"auth_token": TOKEN, "default_from": "nope"}, {"default_from"}),
        ({"auth_token": TOKEN, "default_service": "MG1"}, {"default_service"}),
    ],
)
def test_setup_invalid_field(changes: dict[str, Any], fields: set[str]) -> None:
    """A token or key+secret, valid SIDs, a valid label, and each error on its block."""
    values = submit(form("setup", ()), **{"account_sid": ACCOUNT_SID, **changes})
    errors = errors_of("setup", values, ())
    assert set(errors) == fields
    assert TOKEN not in json.dumps(errors)
    assert_keys_are_inputs("setup", errors, ())


# ── robustness ───────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "values",
    [
        {},
        None,
        "values",
        [],
        {"to": None, "body": None},
        {"to": "x", "body": 5},
        {"to": {"value": 5}, "body": {"value": None}},
        {"to": {"value": {"value": ["+15551234567"]}}, "body": {"value": {"value": {"x": 1}}}},
        {"to": {"other": {"value": "+15551234567"}, "value": {"value": None}}},
        {"send_at": {"value": {"selected_date_time": True}}},
        {"send_at": {"value": {"selected_date_time": "soon"}}},
        {"send_at": {"value": {"selected_date_time": -(10**12)}}},
        {"account": {"value": {"selected_option": "main"}}},
        {"account": {"value": {"selected_option": {"value": 3}}}},
        {"date": {"value": {"selected_date": 20260201}}},
        {"scheduled": {"value": {"selected_options": "yes"}}},
        {"limit": {"value": {"value": "9" * 5000}}},
    ],
)
@pytest.mark.parametrize("sub", list(CALLBACKS))
def test_malformed_values_give_field_errors_only(sub: str, values: Any) -> None:
    """Whatever shape the values have, the only exception is FieldErrors (list's fields are all optional)."""
    if sub == "list":
        try:
            assert isinstance(parse(sub, values, THREE), rq.ListCommand)
        except FieldErrors as err:
            assert err.errors
        return
    with pytest.raises(FieldErrors):
        parse(sub, values, THREE)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(CALLBACKS)),
    st.dictionaries(
        st.sampled_from(FIELDS),
        st.dictionaries(st.sampled_from([ACTION_ID, "other"]), _json, max_size=2) | _json,
        max_size=6,
    ),
)
def test_random_values_never_crash(sub: str, values: dict[str, Any]) -> None:
    """Random JSON in any field yields a result or FieldErrors, never another exception."""
    try:
        parse(sub, values, THREE)
    except FieldErrors as err:
        assert err.errors
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in err.errors.items())


def test_unknown_callback_id() -> None:
    """A callback_id we never built is a programming error."""
    with pytest.raises(ValueError):
        parse_submission("nope", {}, accounts=ONE, now=NOW)


def test_field_errors_are_short() -> None:
    """Error sentences are cut to a readable length."""
    err = FieldErrors({"to": "x" * 1000})
    assert len(err.errors["to"]) <= 300


# ── round trips ──────────────────────────────────────────────────────────────────────────────────────

ROUND_TRIPS: list[tuple[str, rq.Command, Sequence[StoredAccount]]] = [
    (
        "send",
        rq.SendCommand(PhoneNumber("+15551234567"), "Hi & <bye>\n😀", PhoneNumber("+15550001111"), "main"),
        ONE,
    ),
    (
        "send",
        rq.SendCommand(PhoneNumber("+15551234567"), "hi", PhoneNumber("+15550001111"), "us-sales"),
        THREE,
    ),
    (
        "send",
        rq.SendCommand(PhoneNumber("+15551234567", True), "hi", PhoneNumber("+15550001111", True), "eu"),
        THREE,
    ),
    ("send", rq.SendCommand(PhoneNumber("+15551234567"), "hi", None, "eu"), THREE),
    (
        "schedule",
        rq.ScheduleCommand(
            PhoneNumber("+15551234567"), NOW + timedelta(days=2, seconds=7), "later", SERVICE, "main"
        ),
        ONE,
    ),
    (
        "schedule",
        rq.ScheduleCommand(
            PhoneNumber("+447700900123"), NOW + timedelta(days=30), "x", OTHER_SERVICE, "us-sales"
        ),
        THREE,
    ),
    (
        "schedule",
        rq.ScheduleCommand(PhoneNumber("+15551234567"), NOW + timedelta(hours=3), "x", None, "eu"),
        THREE,
    ),
    ("list", rq.ListCommand(limit=20, account="main"), ONE),
    (
        "list",
        rq.ListCommand(
            PhoneNumber("+15551234567"), PhoneNumber("+15557654321"), date(2026, 2, 1), 1000, "eu"
        ),
        THREE,
    ),
    ("list", rq.ListCommand(limit=5, account="us-sales", scheduled_only=True), THREE),
    ("fetch", rq.FetchCommand(SID, "main"), ONE),
    ("cancel", rq.CancelCommand(SID, "eu"), THREE),
    ("delete", rq.DeleteCommand(SID, "us-sales"), THREE),
]


@pytest.mark.parametrize(("sub", "cmd", "accounts"), ROUND_TRIPS)
def test_prefill_round_trip(sub: str, cmd: rq.Command, accounts: Sequence[StoredAccount]) -> None:
    """A command turned into a prefilled form and submitted unchanged gives the same command back."""
    prefill = prefill_from_command(cmd)
    view = build_modal(sub, accounts=accounts, prefill=prefill, metadata=META, now=NOW)
    values = submit(view)
    if isinstance(cmd, rq.SendCommand) and cmd.from_ is None:
        values["from"][ACTION_ID]["value"] = None
    if isinstance(cmd, rq.ScheduleCommand) and cmd.service is None:
        values["service"][ACTION_ID]["value"] = None
    assert parse_submission(CALLBACKS[sub], values, accounts=accounts, now=NOW) == cmd


def test_prefill_never_holds_unknown_keys() -> None:
    """An Incomplete's prefill is passed on, filtered to the form's fields."""
    incomplete = rq.Incomplete("send", {"to": "+15551234567", "auth_token": "x", "bogus": "y"})
    assert prefill_from_command(incomplete) == {"to": "+15551234567"}


def test_incomplete_command_opens_a_prefilled_form() -> None:
    """`/twilio schedule +1 555 123 4567 in 2h` opens the form with To and Send at filled in."""
    parsed = parse_command("schedule +15551234567 in 2h --account main", now=NOW)
    assert isinstance(parsed, rq.Incomplete)
    view = build_modal(parsed.subcommand, accounts=ONE, prefill=parsed.prefill, metadata=META, now=NOW)
    fields = inputs(view)
    assert fields["to"]["element"]["initial_value"] == "+15551234567"
    assert fields["send_at"]["element"]["initial_date_time"] == int((NOW + timedelta(hours=2)).timestamp())
    cmd = parse("schedule", submit(view, body="now the body"))
    assert cmd == rq.ScheduleCommand(
        PhoneNumber("+15551234567"), NOW + timedelta(hours=2), "now the body", SERVICE, "main"
    )

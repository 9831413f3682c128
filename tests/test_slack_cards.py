"""Cards and text helpers: Block Kit limits, escaping of untrusted text, buttons and their values."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from builders import MESSAGE_SID as SID
from builders import NOW, USER, make_message, stored_account
from hypothesis import given
from hypothesis import strategies as st

from bot.core.commands import DESCRIPTIONS, SUBCOMMANDS, USAGE
from bot.core.errors import InputError
from bot.slack import cards
from bot.slack.cards import (
    ACTION_CANCEL,
    ACTION_DELETE,
    ACTION_NEXT_PAGE,
    ACTION_REFRESH,
    ACTION_REOPEN,
    Card,
    parse_button_value,
    parse_reopen_value,
)
from bot.slack.text import cut, escape, mention, safe, slack_date, who
from bot.status import CardFacts
from bot.twilio.models import MessagePage
from storage.accounts import StoredAccount
from storage.audit import AuditEntry

SERVICE = "MG" + "fedcba9876543210" * 2
PING = "<!channel> <!here> <!everyone> <@U999> <#C123> <https://evil.example|click>"

# ── a strict Block Kit checker ───────────────────────────────────────────────────────────────────────


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _walk(v)


def assert_valid_blocks(blocks: Sequence[Mapping[str, Any]]) -> None:
    """Fail unless `blocks` respect Slack's message limits and carry no live broadcast mention."""
    assert 1 <= len(blocks) <= 50
    assert len(json.dumps(list(blocks), ensure_ascii=False, separators=(",", ":"))) <= 12_000
    for block in blocks:
        kind = block["type"]
        assert len(block.get("block_id", "")) <= 255
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 1 <= len(block["text"]["text"]) <= 150
        elif kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert 1 <= len(block["text"]["text"]) <= 3000
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(1 <= len(f["text"]) <= 2000 for f in fields)
        elif kind == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])
        elif kind == "actions":
            assert 1 <= len(block["elements"]) <= 25
            for element in block["elements"]:
                assert element["type"] == "button"
                assert 1 <= len(element["text"]["text"]) <= 75
                assert len(element["action_id"]) <= 255
                assert len(element.get("value", "")) <= 2000
                if "confirm" in element:
                    confirm = element["confirm"]
                    assert len(confirm["title"]["text"]) <= 100
                    assert len(confirm["text"]["text"]) <= 300
                    assert len(confirm["confirm"]["text"]) <= 30
                    assert len(confirm["deny"]["text"]) <= 30
        else:
            assert kind == "divider", f"unexpected block type {kind}"
    for value in _walk(list(blocks)):
        if isinstance(value, str):
            assert not re.search(r"<!(channel|here|everyone)", value), value


def assert_valid_card(card: Card) -> None:
    """A card's blocks are valid and its fallback text is short and escaped."""
    assert_valid_blocks(card.blocks)
    assert 1 <= len(card.text) <= 3000
    assert not re.search(r"<[!@#]", card.text)


def mrkdwn_texts(card: Card) -> list[str]:
    """Every mrkdwn string in a card."""
    return [
        v["text"] for v in _walk(list(card.blocks)) if isinstance(v, Mapping) and v.get("type") == "mrkdwn"
    ]


def buttons(card: Card) -> dict[str, dict[str, Any]]:
    """The card's buttons by action_id."""
    out: dict[str, dict[str, Any]] = {}
    for block in card.blocks:
        if block["type"] == "actions":
            for element in block["elements"]:
                out[element["action_id"]] = element
    return out


def all_text(card: Card) -> str:
    """Everything a reader could see, joined."""
    return "\n".join(v for v in _walk(list(card.blocks)) if isinstance(v, str)) + "\n" + card.text


# ── fixtures ─────────────────────────────────────────────────────────────────────────────────────────


def make_page(count: int, **changes: Any) -> MessagePage:
    """A page of `count` messages with distinct SIDs."""
    messages = tuple(make_message(sid=f"SM{i:032x}", **changes) for i in range(count))
    return MessagePage(messages=messages, next_page_uri=None, page=0, page_size=max(count, 1))


def make_account(label: str = "main", **changes: Any) -> StoredAccount:
    """A stored account without its secret, with this module's Messaging Service."""
    return stored_account(label, **({"default_service_sid": SERVICE} | changes))


def make_entry(i: int = 0, **changes: Any) -> AuditEntry:
    """One audit entry."""
    base = AuditEntry(
        id=i,
        at=NOW - timedelta(minutes=i),
        team_id="T1",
        enterprise_id=None,
        user_id=USER,
        channel_id="C1",
        operation="send",
        account_label="main",
        account_sid="AC" + "a" * 32,
        summary="to=+15551234567 segments=1",
        outcome="ok",
        message_sid=SID,
        error_code=None,
        error_message=None,
    )
    return replace(base, **changes)


# ── text helpers ─────────────────────────────────────────────────────────────────────────────────────


def test_escape_replaces_ampersand_first() -> None:
    """&, < and > become entities, & first so entities are not double-escaped."""
    assert escape("a & <b> &lt;") == "a &amp; &lt;b&gt; &amp;lt;"


def test_cut_counts_the_ellipsis() -> None:
    """cut keeps short text and ends long text with an ellipsis inside the limit."""
    assert cut("hello", 5) == "hello"
    assert cut("hello world", 6) == "hello…"
    assert len(cut("x" * 100, 10)) == 10
    assert cut("abc", 0) == ""


def test_cut_refuses_a_negative_limit() -> None:
    """A negative limit is a programming error."""
    with pytest.raises(ValueError):
        cut("abc", -1)


@given(st.text(alphabet=st.sampled_from("a&<> é😀\n"), max_size=400), st.integers(min_value=0, max_value=300))
def test_safe_fits_and_never_splits_an_entity(text: str, limit: int) -> None:
    """safe's result fits the limit after escaping and is an escaped prefix of the text."""
    result = safe(text, limit)
    assert len(result) <= limit
    core = result.removesuffix("…")
    unescaped = core.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert escape(unescaped) == core
    assert text.startswith(unescaped) or text.rstrip().startswith(unescaped.rstrip())


def test_safe_keeps_text_that_fits() -> None:
    """Text whose escaped form fits comes back escaped and whole."""
    assert safe("<!channel>", 20) == "&lt;!channel&gt;"


def test_safe_shrinks_text_that_grows_when_escaped() -> None:
    """1000 ampersands (5000 escaped characters) are cut to fit 100."""
    result = safe("&" * 1000, 100)
    assert len(result) <= 100
    assert result.endswith("&amp;…")


def test_slack_date_has_a_utc_fallback() -> None:
    """Dates render as <!date^unix^format|ISO UTC>."""
    when = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert (
        slack_date(when)
        == f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|2026-12-01T15:00:00Z>"
    )


def test_slack_date_refuses_a_format_that_breaks_out() -> None:
    """A format with | or > could end the token early."""
    with pytest.raises(ValueError):
        slack_date(NOW, "{time}|<!channel>")


def test_mention_only_for_user_ids() -> None:
    """mention accepts U…/W… IDs and refuses anything that could be a broadcast."""
    assert mention("U0123ABCD") == "<@U0123ABCD>"
    assert mention("W0123ABCD") == "<@W0123ABCD>"
    for bad in ("!channel", "U123>x", "<!here>", "u0123abcd", "", "C0123ABCD"):
        with pytest.raises(ValueError):
            mention(bad)


def test_who_escapes_what_is_not_a_user_id() -> None:
    """who falls back to escaped text, so a CLI user name cannot ping anyone."""
    assert who(USER) == f"<@{USER}>"
    assert who("U1") == "<@U1>"
    assert who("<!channel>") == "&lt;!channel&gt;"
    assert who("") == "someone"


# ── message_card ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("operation", "header"),
    [
        ("send", "Message sent"),
        ("schedule", "Message scheduled"),
        ("fetch", "Message"),
        ("refresh", "Message"),
        ("cancel", "Message canceled"),
    ],
)
def test_message_card_header_per_operation(operation: cards.Operation, header: str) -> None:
    """Each operation has its own header, and every card is valid Block Kit."""
    card = cards.message_card(
        CardFacts(make_message(), requested_by=USER, account_label="main", operation=operation)
    )
    assert_valid_card(card)
    assert card.blocks[0]["text"]["text"] == header


def test_message_card_shows_the_facts() -> None:
    """Who asked, To, From, status, SID, segments, price and account all appear."""
    card = cards.message_card(
        CardFacts(make_message(), requested_by=USER, account_label="main", operation="send")
    )
    text = all_text(card)
    for expected in (
        f"<@{USER}>",
        "+15551234567",
        "+15557654321",
        "✅ delivered",
        SID,
        "*Segments*\n1",
        "main",
    ):
        assert expected in text
    assert "-0.0075 USD" in text
    assert f"<!date^{int((NOW + timedelta(seconds=2)).timestamp())}^" in text


def test_message_card_escapes_a_pinging_body() -> None:
    """An SMS saying <!channel> shows literally, in blocks and in the fallback, and pings nobody."""
    card = cards.message_card(
        CardFacts(make_message(body=PING), requested_by=USER, account_label="main", operation="fetch")
    )
    assert_valid_card(card)
    assert "&lt;!channel&gt;" in all_text(card)
    assert "<!channel>" not in all_text(card)
    assert "<@U999>" not in all_text(card)
    assert "<https://evil" not in all_text(card)


def test_message_card_text_objects_are_verbatim() -> None:
    """Mrkdwn carrying untrusted text is verbatim, so Slack does not link @channel or #names."""
    card = cards.message_card(
        CardFacts(
            make_message(body="@channel #general"), requested_by=USER, account_label="main", operation="fetch"
        )
    )
    for value in _walk(list(card.blocks)):
        if isinstance(value, Mapping) and value.get("type") == "mrkdwn" and "@channel" in value["text"]:
            assert value.get("verbatim") is True


def test_message_card_cuts_a_huge_body_without_splitting_entities() -> None:
    """A body that escapes to 8000 characters is cut to fit one section."""
    card = cards.message_card(
        CardFacts(make_message(body="&" * 1600), requested_by=USER, account_label="main", operation="fetch")
    )
    assert_valid_card(card)
    body = next(t for t in mrkdwn_texts(card) if t.startswith("*Body*"))
    assert body.endswith("&amp;…```")  # cut inside the code block, never mid-entity
    assert len(body) <= 3000


def test_message_card_survives_hostile_long_fields() -> None:
    """Long, markup-laden values in every field still make a valid card."""
    hostile = "<!here>&" * 500
    msg = make_message(
        to=hostile,
        from_=hostile,
        body=hostile,
        status=hostile,
        error_code=30007,
        error_message=hostile,
        messaging_service_sid=hostile,
        price_unit=hostile,
    )
    card = cards.message_card(
        CardFacts(msg, requested_by=hostile, account_label=hostile, operation="send", note=hostile)
    )
    assert_valid_card(card)


@pytest.mark.parametrize(
    ("status", "icon"),
    [
        ("queued", "⏳"),
        ("accepted", "⏳"),
        ("scheduled", "🗓️"),
        ("sent", "✅"),
        ("delivered", "✅"),
        ("undelivered", "❌"),
        ("failed", "❌"),
        ("canceled", "🚫"),
        ("received", "📥"),
        ("read", "👀"),
        ("something-new", "❔"),
    ],
)
def test_message_card_status_icons(status: str, icon: str) -> None:
    """Each status shows with its icon."""
    card = cards.message_card(
        CardFacts(make_message(status=status), requested_by=USER, account_label="main", operation="fetch")
    )
    assert f"{icon} {status}" in all_text(card)


def _scheduled_card(send_at: datetime) -> cards.Card:
    """The card of a message scheduled for `send_at`."""
    message = make_message(status="scheduled", date_sent=None)
    return cards.message_card(CardFacts(message, USER, "main", "schedule", send_at=send_at))


def test_cancel_button_only_while_scheduled() -> None:
    """Cancel (danger, with a confirm) appears only for a scheduled message."""
    scheduled = _scheduled_card(NOW + timedelta(days=1))
    cancel = buttons(scheduled)[ACTION_CANCEL]
    assert cancel["style"] == "danger"
    assert "confirm" in cancel
    for status in ("queued", "sent", "delivered", "canceled", "failed"):
        card = cards.message_card(
            CardFacts(make_message(status=status), requested_by=USER, account_label="main", operation="fetch")
        )
        assert ACTION_CANCEL not in buttons(card)


def test_delete_and_refresh_buttons() -> None:
    """Refresh and Delete are on every message card; Delete asks for confirmation first."""
    card = cards.message_card(
        CardFacts(make_message(), requested_by=USER, account_label="main", operation="send")
    )
    found = buttons(card)
    assert found[ACTION_REFRESH]["text"]["text"] == "Refresh status"
    delete = found[ACTION_DELETE]
    assert delete["style"] == "danger"
    assert delete["confirm"]["text"]["text"] == "Delete this message from Twilio? This cannot be undone."


def test_button_values_round_trip() -> None:
    """Every message button carries compact JSON that parse_button_value reads back."""
    card = cards.message_card(
        CardFacts(
            make_message(status="scheduled"), requested_by=USER, account_label="us-sales", operation="fetch"
        )
    )
    for action_id in (ACTION_REFRESH, ACTION_CANCEL, ACTION_DELETE):
        raw = buttons(card)[action_id]["value"]
        assert " " not in raw
        assert parse_button_value(raw) == {"sid": SID, "account": "us-sales"}


def test_scheduled_card_shows_send_at() -> None:
    """A scheduled message shows when it will go, as a Slack date."""
    send_at = NOW + timedelta(days=2)
    card = _scheduled_card(send_at)
    assert f"*Scheduled for*\n<!date^{int(send_at.timestamp())}^" in all_text(card)


def test_card_names_the_messaging_service_when_there_is_no_from() -> None:
    """A message sent through a Messaging Service names it instead of a From number."""
    card = cards.message_card(
        CardFacts(
            make_message(from_=None, messaging_service_sid=SERVICE),
            requested_by=USER,
            account_label="main",
            operation="send",
        )
    )
    assert f"*Messaging Service*\n`{SERVICE}`" in all_text(card)
    assert "*From*" not in all_text(card)


def test_card_shows_twilio_error_escaped() -> None:
    """Twilio's error code and message appear, escaped."""
    card = cards.message_card(
        CardFacts(
            make_message(
                status="undelivered", error_code=30007, error_message="Carrier <filtered> & blocked"
            ),
            requested_by=USER,
            account_label="main",
            operation="fetch",
        )
    )
    text = all_text(card)
    assert "Twilio error 30007" in text
    assert "Carrier &lt;filtered&gt; &amp; blocked" in text


def test_card_without_price_says_nothing_about_price() -> None:
    """Price is shown only when Twilio knows it."""
    card = cards.message_card(
        CardFacts(make_message(price=None), requested_by=USER, account_label="main", operation="send")
    )
    assert "*Price*" not in all_text(card)


def test_card_note_is_escaped() -> None:
    """The optional note is plain words, escaped."""
    card = cards.message_card(
        CardFacts(
            make_message(), requested_by=USER, account_label="main", operation="send", note="see <!here>"
        )
    )
    assert "see &lt;!here&gt;" in all_text(card)


# ── button values ───────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[]",
        "null",
        '"SM"',
        json.dumps({"sid": SID}),
        json.dumps({"sid": SID, "account": "main", "extra": "x"}),
        json.dumps({"sid": 1, "account": "main"}),
        json.dumps({"sid": SID, "account": ["main"]}),
        json.dumps({"sid": "AC" + "0" * 32, "account": "main"}),
        json.dumps({"sid": SID + "0", "account": "main"}),
        json.dumps({"sid": SID, "account": "has space"}),
        json.dumps({"sid": SID, "account": "x" * 1900}),
        "x" * 2001,
    ],
)
def test_parse_button_value_refuses_garbage(raw: str) -> None:
    """Anything message_card could not have written raises InputError."""
    with pytest.raises(InputError):
        parse_button_value(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "{}",
        json.dumps({"cmd": "send"}),
        json.dumps({"cmd": "nope", "prefill": {}}),
        json.dumps({"cmd": "send", "prefill": []}),
        json.dumps({"cmd": "send", "prefill": {"to": 5}}),
        json.dumps({"cmd": "setup", "prefill": {"auth_token": "secret"}}),
        json.dumps({"cmd": "send", "prefill": {"unknown": "x"}}),
    ],
)
def test_parse_reopen_value_refuses_garbage(raw: str) -> None:
    """A reopen value must name a form and carry only known, non-secret text fields."""
    with pytest.raises(InputError):
        parse_reopen_value(raw)


# ── list_card ───────────────────────────────────────────────────────────────────────────────────────


def test_list_card_empty() -> None:
    """An empty page says no messages match."""
    card = cards.list_card(
        make_page(0), requested_by=USER, account_label="main", filters="to +15551234567", next_value=None
    )
    assert_valid_card(card)
    assert "No messages match." in all_text(card)


def test_list_card_shows_a_small_page_whole() -> None:
    """Five messages: five rows, no "Showing N of M", no Next button without a next page."""
    card = cards.list_card(
        make_page(5), requested_by=USER, account_label="main", filters="all messages", next_value=None
    )
    assert_valid_card(card)
    text = all_text(card)
    assert sum(text.count(f"`SM{i:032x}`") for i in range(5)) == 5
    assert "Showing" not in text
    assert "5 messages on this page." in text
    assert ACTION_NEXT_PAGE not in buttons(card)


def test_list_card_of_1000_messages_stays_within_limits() -> None:
    """A full page of 1000 long messages shows as many as fit and says how many."""
    page = make_page(1000, body="<!channel> " + "long body " * 150)
    value = json.dumps({"uri": "/2010-04-01/Accounts/AC/Messages.json?PageToken=x", "account": "main"})
    card = cards.list_card(page, requested_by=USER, account_label="main", filters="all", next_value=value)
    assert_valid_card(card)
    text = all_text(card)
    shown = int(re.search(r"Showing (\d+) of 1000 on this page", text).group(1))  # type: ignore[union-attr]
    assert 20 <= shown < 1000
    assert sum(1 for i in range(1000) if f"`SM{i:032x}`" in text) == shown
    assert buttons(card)[ACTION_NEXT_PAGE]["value"] == value


def test_list_card_rows_escape_and_flatten_bodies() -> None:
    """Rows are one line each, with the body escaped and cut."""
    page = make_page(2, body="line one\nline <two> & three " + "x" * 200)
    card = cards.list_card(page, requested_by=USER, account_label="main", filters="", next_value=None)
    rows = next(t for t in mrkdwn_texts(card) if "`SM" in t).split("\n")
    assert len(rows) == 2
    assert "line one line &lt;two&gt; &amp; three" in rows[0]
    assert rows[0].endswith("…")


def test_list_card_rows_name_the_sender() -> None:
    """A row shows From, or the Messaging Service (masked), or a dash when Twilio gave neither."""
    page = MessagePage(
        messages=(
            make_message(sid=f"SM{1:032x}"),
            make_message(sid=f"SM{2:032x}", from_=None, messaging_service_sid=SERVICE),
            make_message(sid=f"SM{3:032x}", from_=None),
        ),
        next_page_uri=None,
        page=0,
        page_size=3,
    )
    card = cards.list_card(page, requested_by=USER, account_label="main", filters="", next_value=None)
    rows = next(t for t in mrkdwn_texts(card) if "`SM" in t).split("\n")
    assert "+15557654321 → +15551234567" in rows[0]
    assert "via `MGfe…3210` → +15551234567" in rows[1]
    assert "— → +15551234567" in rows[2]


def test_list_card_omits_a_next_value_that_is_too_long() -> None:
    """A next-page value over 2000 characters leaves the button out and says why."""
    card = cards.list_card(
        make_page(3), requested_by=USER, account_label="main", filters="all", next_value="x" * 2001
    )
    assert_valid_card(card)
    assert ACTION_NEXT_PAGE not in buttons(card)
    assert "too long for a button" in all_text(card)


def test_list_card_scheduled_title() -> None:
    """The scheduled-only variant has its own title."""
    card = cards.list_card(
        make_page(1, status="scheduled"),
        requested_by=USER,
        account_label="main",
        filters="scheduled",
        next_value=None,
        title="Scheduled messages",
    )
    assert card.blocks[0]["text"]["text"] == "Scheduled messages"
    assert "🗓️ scheduled" in all_text(card)


def test_list_card_escapes_filters() -> None:
    """The filters line is escaped."""
    card = cards.list_card(
        make_page(1), requested_by=USER, account_label="main", filters="<!here>", next_value=None
    )
    assert "&lt;!here&gt;" in all_text(card)


# ── other cards ──────────────────────────────────────────────────────────────────────────────────────


def test_deleted_card() -> None:
    """A deleted message names its SID, the account and who deleted it."""
    card = cards.deleted_card(SID, requested_by=USER, account_label="main")
    assert_valid_card(card)
    text = all_text(card)
    assert SID in text and "main" in text and f"<@{USER}>" in text


def test_error_card_escapes_the_sentence() -> None:
    """The failure sentence shows escaped, without a button unless asked."""
    card = cards.error_card(
        title="Could not send", sentence="“<!channel>” is not a number", requested_by=USER
    )
    assert_valid_card(card)
    assert "&lt;!channel&gt;" in all_text(card)
    assert buttons(card) == {}


def test_error_card_reopen_round_trip() -> None:
    """The "Edit and try again" button carries the form and its prefill."""
    prefill = {"to": "+15551234567", "body": "hi & bye", "account": "main"}
    card = cards.error_card(
        title="Could not send", sentence="Twilio said no.", requested_by=USER, reopen=("send", prefill)
    )
    assert_valid_card(card)
    button = buttons(card)[ACTION_REOPEN]
    assert button["text"]["text"] == "Edit and try again"
    assert parse_reopen_value(button["value"]) == ("send", prefill)


def test_error_card_reopen_cuts_the_body_to_fit() -> None:
    """A long body is shortened so the value fits 2000 characters; other fields survive."""
    prefill = {"to": "+15551234567", "body": 'é"\\' * 1000}
    card = cards.error_card(title="t", sentence="s", requested_by=USER, reopen=("send", prefill))
    assert_valid_card(card)
    value = buttons(card)[ACTION_REOPEN]["value"]
    assert len(value) <= 2000
    cmd, back = parse_reopen_value(value)
    assert cmd == "send"
    assert back["to"] == "+15551234567"
    assert back["body"].endswith("…")
    assert prefill["body"].startswith(back["body"][:-1])


def test_error_card_reopen_never_carries_secrets_or_unknown_fields() -> None:
    """Secret and unknown keys are dropped from the button value."""
    prefill = {"label": "main", "auth_token": "s3cret", "api_secret": "s3cret2", "whatever": "x"}
    card = cards.error_card(title="t", sentence="s", requested_by=USER, reopen=("setup", prefill))
    value = buttons(card)[ACTION_REOPEN]["value"]
    assert "s3cret" not in value
    assert parse_reopen_value(value) == ("setup", {"label": "main"})


def test_error_card_reopen_drops_oversized_fields() -> None:
    """Fields that cannot fit are dropped rather than breaking the card."""
    prefill = {"to": "9" * 3000, "sid": "x" * 3000, "account": "main"}
    card = cards.error_card(title="t", sentence="s", requested_by=USER, reopen=("fetch", prefill))
    assert_valid_card(card)
    assert parse_reopen_value(buttons(card)[ACTION_REOPEN]["value"]) == ("fetch", {"account": "main"})


def test_error_card_without_a_known_form_has_no_button() -> None:
    """A reopen for a subcommand without a form is ignored."""
    card = cards.error_card(title="t", sentence="s", requested_by=USER, reopen=("history", {}))
    assert buttons(card) == {}


def test_unknown_outcome_card() -> None:
    """The card says Twilio did not confirm and nothing was re-sent, with the body escaped."""
    card = cards.unknown_outcome_card(
        to="+15551234567",
        body="<!channel> hi",
        requested_by=USER,
        account_label="main",
        detail="timed out <after> 10 s",
    )
    assert_valid_card(card)
    text = all_text(card)
    assert "Outcome unknown" in text
    assert "nothing was re-sent" in text
    assert "nothing was re-sent" in card.text
    assert "&lt;!channel&gt; hi" in text
    assert "timed out &lt;after&gt; 10 s" in text


def test_accounts_card_masks_sids_and_shows_no_secret() -> None:
    """Accounts list labels and masked SIDs, never the full account SID."""
    accounts = [
        make_account("main"),
        make_account(
            "us-sales", id=2, is_default=False, api_key_sid="SK" + "1" * 32, default_service_sid=None
        ),
    ]
    card = cards.accounts_card(accounts)
    assert_valid_card(card)
    text = all_text(card)
    assert "*main* (default)" in text and "*us-sales*" in text
    assert "AC01…cdef" in text and "SK11…1111" in text
    assert accounts[0].account_sid not in text
    assert SERVICE not in text


def test_accounts_card_empty_says_how_to_add() -> None:
    """No accounts: the card points to /twilio setup."""
    card = cards.accounts_card([])
    assert_valid_card(card)
    assert "/twilio setup" in all_text(card)


def test_accounts_card_with_many_accounts_stays_valid() -> None:
    """Two hundred accounts still make a valid card."""
    card = cards.accounts_card([make_account(f"acct-{i}", id=i, is_default=i == 0) for i in range(200)])
    assert_valid_card(card)
    assert "Showing" in all_text(card)


def test_history_card() -> None:
    """History rows show time, who, what, account, outcome and SID; hostile text is escaped."""
    entries = [
        make_entry(0),
        make_entry(1, outcome="error", error_code=21211, message_sid=None, summary="bad <!here>"),
        make_entry(2, user_id="cli:root", account_label=None),
    ]
    card = cards.history_card(entries)
    assert_valid_card(card)
    text = all_text(card)
    assert f"<@{USER}>" in text and "✅ ok" in text and "❌ error" in text and "error 21211" in text
    assert "bad &lt;!here&gt;" in text
    assert "cli:root" in text


def test_history_card_empty_and_huge() -> None:
    """No entries says so; a thousand entries still fit."""
    assert_valid_card(cards.history_card([]))
    card = cards.history_card([make_entry(i, summary="x" * 300) for i in range(1000)])
    assert_valid_card(card)
    assert "Showing" in all_text(card)


def test_help_card_lists_every_subcommand() -> None:
    """Help shows every usage line and description from bot.core.commands."""
    card = cards.help_card(USAGE, DESCRIPTIONS)
    assert_valid_card(card)
    text = all_text(card)
    for name in SUBCOMMANDS:
        assert escape(USAGE[name]) in text
        assert escape(DESCRIPTIONS[name]) in text


def test_help_card_names_an_unknown_subcommand_escaped() -> None:
    """An unknown word is quoted back, escaped."""
    card = cards.help_card(USAGE, DESCRIPTIONS, unknown="<!channel>")
    assert_valid_card(card)
    assert "/twilio &lt;!channel&gt;" in all_text(card)


def test_cards_are_frozen() -> None:
    """A Card cannot be changed after it is built."""
    card = cards.deleted_card(SID, requested_by=USER, account_label="main")
    with pytest.raises(AttributeError):
        card.text = "x"  # type: ignore[misc]


def test_message_body_shows_as_typed_not_formatted() -> None:
    """An SMS body with *stars*, _underscores_ and backticks is shown literally in a code block."""
    card = cards.message_card(
        CardFacts(
            make_message(body="*bold* _it_ ``` <!here>"),
            requested_by=USER,
            account_label="main",
            operation="fetch",
        )
    )
    body = next(t for t in mrkdwn_texts(card) if t.startswith("*Body*"))
    assert body == "*Body*\n```*bold* _it_ `\u200b`` &lt;!here&gt;```"

"""The live-status rules on their own: which reports are read, and the order statuses move in."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from builders import make_message

from bot.status import CANCELED, CardFacts, StatusReport, advance_rule, parse_status_report

SID = "SM" + "a" * 32
ACCOUNT = "AC" + "1" * 32
ORDER = ["scheduled", "queued", "sending", "sent", "delivered", "read"]


def applies(current: str, new: str) -> bool:
    """Whether a report of `new` moves a message stored as `current` (the storage rule, in numbers)."""
    stored, _ = advance_rule(current)
    _, below = advance_rule(new)
    return stored < below


@pytest.mark.parametrize(("earlier", "later"), list(itertools.pairwise(ORDER)))
def test_each_status_moves_forward_and_never_back(earlier: str, later: str) -> None:
    """queued after scheduled applies; scheduled after queued does not; nor does the same one twice."""
    assert applies(earlier, later)
    assert not applies(later, earlier)
    assert not applies(later, later)


def test_final_statuses_are_peers_and_read_comes_after_them() -> None:
    """delivered, undelivered and failed do not replace each other; read follows any of them."""
    finals = ["delivered", "undelivered", "failed"]
    for a in finals:
        for b in finals:
            assert not applies(a, b)
        assert applies(a, "read")
    assert applies("accepted", "queued") and not applies("scheduled", "accepted")


def test_canceled_ends_what_has_not_finished() -> None:
    """canceled applies before a final status, not after; nothing applies after canceled."""
    for status in ("accepted", "scheduled", "queued", "sending", "sent"):
        assert applies(status, CANCELED)
    for status in ("delivered", "undelivered", "failed", "read", CANCELED):
        assert not applies(status, CANCELED)
    for status in ORDER:
        assert not applies(CANCELED, status)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"MessageSid": SID, "MessageStatus": "Delivered"}, StatusReport(SID, ACCOUNT, "delivered")),
        ({"SmsSid": SID, "SmsStatus": "sent"}, StatusReport(SID, ACCOUNT, "sent")),
        (
            {"MessageSid": SID, "MessageStatus": "undelivered", "ErrorCode": "30003"},
            StatusReport(SID, ACCOUNT, "undelivered", 30003),
        ),
        ({"MessageSid": SID, "MessageStatus": "sent", "ErrorCode": ""}, StatusReport(SID, ACCOUNT, "sent")),
        ({"MessageSid": SID, "MessageStatus": "received"}, None),
    ],
)
def test_a_report_is_read_from_twilio_s_fields(fields: dict[str, str], expected: StatusReport | None) -> None:
    """MessageSid/MessageStatus (or the older SmsSid/SmsStatus), an optional ErrorCode; inbound is ignored."""
    assert parse_status_report(ACCOUNT, fields) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"MessageSid": "SM123", "MessageStatus": "sent"},
        {"MessageSid": SID},
        {"MessageSid": SID, "MessageStatus": "<script>"},
        {"MessageSid": SID, "MessageStatus": "sent", "ErrorCode": "30003; DROP"},
        {"MessageSid": SID, "MessageStatus": "sent", "ErrorCode": "1234567"},
    ],
)
def test_a_malformed_report_gets_a_sentence_that_echoes_nothing(fields: dict[str, str]) -> None:
    """A sentence for the 400, without the sender's text in it."""
    said = parse_status_report(ACCOUNT, fields)
    assert isinstance(said, str) and "nothing was done" in said
    assert "<script>" not in said and "DROP" not in said


def test_card_facts_survive_storage_unchanged() -> None:
    """What a card was drawn from comes back from its stored text exactly."""
    moment = datetime(2026, 11, 26, 12, 0, 5, tzinfo=UTC)
    message = make_message(
        sid=SID,
        account_sid=ACCOUNT,
        body="héllo <b> & 🎉",
        status="queued",
        num_segments=2,
        price=Decimal("-0.0079"),
        date_created=moment,
        date_sent=None,
        date_updated=moment,
        uri=f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json",
    )
    facts = CardFacts(message, "U0ADMIN", "main", "schedule", send_at=moment, note="found by looking up")
    assert CardFacts.from_json(facts.to_json()) == facts

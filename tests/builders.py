"""Values the tests build by hand, every field filled in: a stored account, a Twilio message, a route
and an inbound text to store, and the sandbox admin's send as the journal and the outbox keep it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, TEAM_ID
from bot.sandbox.twilio import SANDBOX_ACCOUNT_SID
from bot.twilio.models import Message
from storage.accounts import StoredAccount
from storage.conversations import NewInbound, NewRoute
from storage.journal import NewJournalEntry
from storage.outbox import NewOutboxEntry

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
SERVICE = "MG" + "0123456789abcdef" * 2
USER = "U0123ABCD"
MESSAGE_SID = "SM" + "0123456789abcdef" * 2
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OUR_NUMBER = "+15557654321"
THEIR_NUMBER = "+15550001234"


def stored_account(label: str = "main", **changes: Any) -> StoredAccount:
    """A stored account (no secret) of team T1, the default, with a default sender and Messaging Service."""
    base = StoredAccount(
        id=1,
        team_id="T1",
        enterprise_id=None,
        label=label,
        account_sid=ACCOUNT_SID,
        api_key_sid=None,
        default_from="+15557654321",
        default_service_sid=SERVICE,
        is_default=True,
        added_by=USER,
        added_at=NOW,
    )
    return replace(base, **changes)


def make_message(**changes: Any) -> Message:
    """A delivered outbound SMS, with `changes` applied."""
    base = Message(
        sid=MESSAGE_SID,
        account_sid="AC" + "a" * 32,
        to="+15551234567",
        from_="+15557654321",
        body="Hello from Slack",
        status="delivered",
        direction="outbound-api",
        num_segments=1,
        num_media=0,
        price=Decimal("-0.00750"),
        price_unit="USD",
        error_code=None,
        error_message=None,
        messaging_service_sid=None,
        date_created=NOW,
        date_sent=NOW + timedelta(seconds=2),
        date_updated=NOW + timedelta(seconds=5),
        uri=f"/2010-04-01/Accounts/AC{'a' * 32}/Messages/{MESSAGE_SID}.json",
    )
    return replace(base, **changes)


def new_route(**changes: Any) -> NewRoute:
    """Team T1's route of OUR_NUMBER (account "main") to channel C1, with `changes` applied."""
    base = NewRoute(
        team_id="T1",
        number=OUR_NUMBER,
        channel_id="C1",
        account_label="main",
        account_sid=ACCOUNT_SID,
        created_by=USER,
    )
    return replace(base, **changes)


def new_inbound(**changes: Any) -> NewInbound:
    """A plain text (no media, opt-out or profile name) from THEIR_NUMBER to OUR_NUMBER, with `changes`."""
    base = NewInbound(
        message_sid=MESSAGE_SID,
        account_sid=ACCOUNT_SID,
        our_number=OUR_NUMBER,
        their_number=THEIR_NUMBER,
        body="hi",
        profile_name=None,
        opt_out_type=None,
        num_media=0,
        received_at=NOW,
    )
    return replace(base, **changes)


def accepted_send(key: str, fields: dict[str, Any], **changes: Any) -> NewJournalEntry:
    """The sandbox admin's `/twilio send` in #general, as the journal writes it down on acceptance."""
    base = NewJournalEntry(
        key=key, team_id=TEAM_ID, user_id=ADMIN_ID, channel_id=GENERAL_ID, subcommand="send", fields=fields
    )
    return replace(base, **changes)


def claimed_send(key: str, request: dict[str, Any], **changes: Any) -> NewOutboxEntry:
    """The sandbox admin's send in #general from the sandbox account "main", as the outbox claims it."""
    base = NewOutboxEntry(
        key=key,
        team_id=TEAM_ID,
        user_id=ADMIN_ID,
        channel_id=GENERAL_ID,
        operation="send",
        request=request,
        account_label="main",
        account_sid=SANDBOX_ACCOUNT_SID,
    )
    return replace(base, **changes)

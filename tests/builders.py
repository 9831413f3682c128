"""Values the unit tests build by hand, every field filled in: a stored account, a Twilio message."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.twilio.models import Message
from storage.accounts import StoredAccount

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
SERVICE = "MG" + "0123456789abcdef" * 2
USER = "U0123ABCD"
MESSAGE_SID = "SM" + "0123456789abcdef" * 2
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


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

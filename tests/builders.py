"""Values the Slack-layer unit tests build by hand: a stored account with every field filled in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from storage.accounts import StoredAccount

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
SERVICE = "MG" + "0123456789abcdef" * 2
USER = "U0123ABCD"
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

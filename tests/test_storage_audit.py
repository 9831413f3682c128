"""The audit log: newest first, per team, never secrets."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from storage.audit import AuditLog, NewAuditEntry, redact
from storage.db import Database


async def _record(log: AuditLog, team: str, operation: str, **changes: Any) -> int:
    values: dict[str, Any] = {
        "team_id": team,
        "user_id": "U1",
        "channel_id": "C1",
        "operation": operation,
        "outcome": "ok",
    }
    values.update(changes)
    return await log.record(NewAuditEntry(**values))


async def test_recent_returns_the_teams_entries_newest_first(db: Database) -> None:
    """recent() lists one team's entries newest first, up to the limit."""
    log = AuditLog(db)
    for operation in ("send", "list", "fetch", "cancel"):
        await _record(log, "T1", operation)
    await _record(log, "T2", "delete")
    assert [e.operation for e in await log.recent("T1")] == ["cancel", "fetch", "list", "send"]
    assert [e.operation for e in await log.recent("T1", limit=2)] == ["cancel", "fetch"]
    assert [e.team_id for e in await log.recent("T2")] == ["T2"]


async def test_entries_keep_every_field(db: Database) -> None:
    """An error entry reads back with its code, message and account."""
    log = AuditLog(db)
    entry_id = await _record(
        log,
        "T1",
        "send",
        outcome="error",
        account_label="main",
        account_sid="AC" + "1" * 32,
        summary="to +15551234567",
        error_code=21211,
        error_message="The 'To' number is not valid.",
        enterprise_id="E1",
    )
    (entry,) = await log.recent("T1")
    assert entry.id == entry_id
    assert (entry.outcome, entry.error_code, entry.account_label, entry.enterprise_id) == (
        "error",
        21211,
        "main",
        "E1",
    )
    assert entry.at.tzinfo is not None


async def test_an_unknown_outcome_is_refused(db: Database) -> None:
    """Only ok/error/unknown/rejected are accepted."""
    with pytest.raises(ValueError, match="outcome"):
        await _record(AuditLog(db), "T1", "send", outcome="maybe")


def test_record_has_no_parameter_that_could_carry_a_secret() -> None:
    """AuditLog.record takes no secret, token or credentials by design."""
    names = set(inspect.signature(AuditLog.record).parameters)
    assert not {n for n in names if any(w in n for w in ("secret", "token", "cred", "password", "key"))}


async def test_token_shaped_text_is_redacted_but_sids_are_kept(db: Database) -> None:
    """A bare 32-hex string (an auth token's shape) is redacted; SIDs stay readable."""
    log = AuditLog(db)
    token = "9f86d081884c7d659a2feaa0c55ad015"
    sid = "SM" + "ab" * 16
    await _record(log, "T1", "send", summary=f"oops {token} {sid}", error_message=f"auth {token}")
    (entry,) = await log.recent("T1")
    assert token not in entry.summary and token not in (entry.error_message or "")
    assert sid in entry.summary
    assert redact(token) == "[redacted]"

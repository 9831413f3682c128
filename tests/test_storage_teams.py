"""Per-workspace settings."""

from __future__ import annotations

from storage.db import Database
from storage.teams import TeamSettings


async def test_log_channel_is_set_read_and_cleared_per_team(db: Database) -> None:
    """set_log_channel stores per team; None clears it; other teams are unaffected."""
    teams = TeamSettings(db)
    assert await teams.get_log_channel("T1") is None
    await teams.set_log_channel("T1", "C123", updated_by="U1")
    await teams.set_log_channel("T2", "C999", updated_by="U2")
    assert await teams.get_log_channel("T1") == "C123"
    await teams.set_log_channel("T1", None, updated_by="U1")
    assert await teams.get_log_channel("T1") is None
    assert await teams.get_log_channel("T2") == "C999"

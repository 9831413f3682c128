"""Per-workspace settings, such as the channel that receives a copy of every result card."""

from __future__ import annotations

from storage.db import Database, utc_now

__all__ = ["TeamSettings"]


class TeamSettings:
    """Read and change a workspace's settings."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_log_channel(self, team_id: str) -> str | None:
        """The team's log channel ID, or None when it has none."""
        row = await self._db.fetch_one("SELECT log_channel_id FROM teams WHERE team_id = ?", [team_id])
        return None if row is None or row["log_channel_id"] is None else str(row["log_channel_id"])

    async def set_log_channel(self, team_id: str, channel_id: str | None, updated_by: str) -> None:
        """Set the team's log channel, or clear it with None."""
        await self._db.execute(
            "INSERT INTO teams (team_id, log_channel_id, updated_by, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (team_id) DO UPDATE SET log_channel_id = excluded.log_channel_id, "
            "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            [team_id, channel_id, updated_by, utc_now()],
        )

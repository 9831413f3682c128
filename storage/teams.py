"""Per-workspace settings, such as the channel that receives a copy of every result card."""

from __future__ import annotations

import sqlite_utils

from storage.db import Database, utc_now

__all__ = ["TeamSettings"]


class TeamSettings:
    """Read and change a workspace's settings."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_log_channel(self, team_id: str) -> str | None:
        """The team's log channel ID, or None when it has none."""

        def read(db: sqlite_utils.Database) -> str | None:
            row = db.execute("SELECT log_channel_id FROM teams WHERE team_id = ?", [team_id]).fetchone()
            return None if row is None or row[0] is None else str(row[0])

        return await self._db.run(read)

    async def set_log_channel(self, team_id: str, channel_id: str | None, updated_by: str) -> None:
        """Set the team's log channel, or clear it with None."""

        def write(db: sqlite_utils.Database) -> None:
            db.execute(
                "INSERT INTO teams (team_id, log_channel_id, updated_by, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (team_id) DO UPDATE SET log_channel_id = excluded.log_channel_id, "
                "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                [team_id, channel_id, updated_by, utc_now()],
            )

        await self._db.run(write)

"""The Slack installations (one per workspace, or per Enterprise Grid org) and the OAuth states.

Bot tokens and refresh tokens are stored only encrypted, with the database's SecretBox (the keys that
encrypt the Twilio secrets). Forgetting a workspace deletes its installation and its Twilio accounts in
one transaction, and on SQLite leaves no copy of their encrypted bytes in the file or its WAL.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.conversations import forget_org, forget_team
from storage.db import Database, iso, utc_now

__all__ = ["Forgotten", "InstallationStore", "OAuthStates", "StoredInstallation", "install_key"]

STATE_LIFETIME = timedelta(minutes=10)

_SELECT = (
    "SELECT install_key, team_id, team_name, enterprise_id, enterprise_name, is_enterprise_install, "
    "app_id, bot_id, bot_user_id, bot_token_enc, bot_refresh_token_enc, bot_token_expires_at, bot_scopes, "
    "installed_by, installed_at FROM slack_installations "
)
_UPSERT = (
    "INSERT INTO slack_installations (install_key, team_id, team_name, enterprise_id, enterprise_name, "
    "is_enterprise_install, app_id, bot_id, bot_user_id, bot_token_enc, bot_refresh_token_enc, "
    "bot_token_expires_at, bot_scopes, installed_by, installed_at, updated_at) VALUES (:install_key, "
    ":team_id, :team_name, :enterprise_id, :enterprise_name, :is_enterprise_install, :app_id, :bot_id, "
    ":bot_user_id, :bot_token_enc, :bot_refresh_token_enc, :bot_token_expires_at, :bot_scopes, "
    ":installed_by, :installed_at, :updated_at) ON CONFLICT (install_key) DO UPDATE SET "
    "team_id = excluded.team_id, team_name = excluded.team_name, enterprise_id = excluded.enterprise_id, "
    "enterprise_name = excluded.enterprise_name, is_enterprise_install = excluded.is_enterprise_install, "
    "app_id = excluded.app_id, bot_id = excluded.bot_id, bot_user_id = excluded.bot_user_id, "
    "bot_token_enc = excluded.bot_token_enc, bot_refresh_token_enc = excluded.bot_refresh_token_enc, "
    "bot_token_expires_at = excluded.bot_token_expires_at, bot_scopes = excluded.bot_scopes, "
    "installed_by = excluded.installed_by, installed_at = excluded.installed_at, "
    "updated_at = excluded.updated_at"
)


def install_key(team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool) -> str:
    """The row's unique key: `E:<enterprise>` for an org-wide install, else `T:<team>`."""
    if is_enterprise_install:
        if not enterprise_id:
            raise ValueError("An org-wide installation needs its enterprise ID.")
        return f"E:{enterprise_id}"
    if not team_id:
        raise ValueError("A workspace installation needs its team ID.")
    return f"T:{team_id}"


@dataclass(frozen=True)
class StoredInstallation:
    """One installation of the app; `repr()` never shows a token."""

    team_id: str | None
    enterprise_id: str | None
    is_enterprise_install: bool
    bot_token: str = field(repr=False)
    team_name: str | None = None
    enterprise_name: str | None = None
    app_id: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_refresh_token: str | None = field(default=None, repr=False)
    bot_token_expires_at: datetime | None = None
    bot_scopes: tuple[str, ...] = ()
    installed_by: str | None = None
    installed_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def key(self) -> str:
        """The stored row's key (see `install_key`)."""
        return install_key(self.team_id, self.enterprise_id, self.is_enterprise_install)


@dataclass(frozen=True)
class Forgotten:
    """What forgetting a workspace deleted."""

    installations: int
    accounts: int
    routes: int = 0
    conversations: int = 0


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


class InstallationStore:
    """Save, find, list and forget installations; tokens encrypted at rest."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _installation(self, row: Mapping[str, Any]) -> StoredInstallation:
        box = self._db.box
        refresh = row["bot_refresh_token_enc"]
        installed_at = _time(row["installed_at"])
        assert installed_at is not None
        return StoredInstallation(
            team_id=row["team_id"],
            enterprise_id=row["enterprise_id"],
            is_enterprise_install=bool(row["is_enterprise_install"]),
            bot_token=box.decrypt(str(row["bot_token_enc"])),
            team_name=row["team_name"],
            enterprise_name=row["enterprise_name"],
            app_id=row["app_id"],
            bot_id=row["bot_id"],
            bot_user_id=row["bot_user_id"],
            bot_refresh_token=None if refresh is None else box.decrypt(str(refresh)),
            bot_token_expires_at=_time(row["bot_token_expires_at"]),
            bot_scopes=tuple(s for s in str(row["bot_scopes"] or "").split(",") if s),
            installed_by=row["installed_by"],
            installed_at=installed_at,
        )

    async def save(self, installation: StoredInstallation) -> None:
        """Store `installation`, replacing the one with the same key (a reinstall, a refreshed token)."""
        if not installation.bot_token.strip():
            raise ValueError("An installation without a bot token cannot be stored.")
        box = self._db.box
        refresh = installation.bot_refresh_token
        expires = installation.bot_token_expires_at
        await self._db.execute(
            _UPSERT,
            {
                "install_key": installation.key,
                "team_id": installation.team_id,
                "team_name": installation.team_name,
                "enterprise_id": installation.enterprise_id,
                "enterprise_name": installation.enterprise_name,
                "is_enterprise_install": int(installation.is_enterprise_install),
                "app_id": installation.app_id,
                "bot_id": installation.bot_id,
                "bot_user_id": installation.bot_user_id,
                "bot_token_enc": box.encrypt(installation.bot_token),
                "bot_refresh_token_enc": None if not refresh else box.encrypt(refresh),
                "bot_token_expires_at": None if expires is None else iso(expires),
                "bot_scopes": ",".join(installation.bot_scopes),
                "installed_by": installation.installed_by,
                "installed_at": iso(installation.installed_at),
                "updated_at": utc_now(),
            },
        )

    async def find(
        self, *, team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool = False
    ) -> StoredInstallation | None:
        """The installation that serves this team: its own, else its org's org-wide one; None if neither."""
        if team_id and not is_enterprise_install:
            row = await self._db.fetch_one(
                _SELECT + "WHERE install_key = ?", [install_key(team_id, None, False)]
            )
            if row is not None:
                return self._installation(row)
        if enterprise_id:
            row = await self._db.fetch_one(
                _SELECT + "WHERE install_key = ?", [install_key(None, enterprise_id, True)]
            )
            if row is not None:
                return self._installation(row)
        return None

    async def list(self) -> list[StoredInstallation]:
        """Every installation, oldest first."""
        rows = await self._db.fetch_all(_SELECT)
        return sorted((self._installation(row) for row in rows), key=lambda i: (i.installed_at, i.key))

    async def forget(
        self, *, team_id: str | None, enterprise_id: str | None = None, is_enterprise_install: bool = False
    ) -> Forgotten:
        """Delete the installation, Twilio accounts, settings, routes and conversations of a workspace (or
        an org-wide install's installation, its org's accounts and their routes and conversations).

        One transaction: all go or none. The audit log stays (it holds no secrets). On SQLite
        the WAL is then checkpointed and truncated, so the deleted bytes (zeroed by secure_delete) leave
        no copy behind.
        """
        async with self._db.transaction() as tx:
            if is_enterprise_install:
                key = install_key(None, enterprise_id, True)
                installs = await tx.execute("DELETE FROM slack_installations WHERE install_key = ?", [key])
                talks = await forget_org(tx, enterprise_id)
                accounts = await tx.execute("DELETE FROM accounts WHERE enterprise_id = ?", [enterprise_id])
            else:
                key = install_key(team_id, None, False)
                await tx.lock(f"accounts:{team_id}")
                installs = await tx.execute("DELETE FROM slack_installations WHERE install_key = ?", [key])
                accounts = await tx.execute("DELETE FROM accounts WHERE team_id = ?", [team_id])
                # Its settings too (the log channel), so a reinstall starts clean.
                await tx.execute("DELETE FROM teams WHERE team_id = ?", [team_id])
                # And its routes and threads: customers' texts are not kept for a workspace that left.
                talks = await forget_team(tx, team_id or "")
        if self._db.engine == "sqlite":
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return Forgotten(installs, accounts, talks.routes, talks.conversations)

    async def rotate_all(self) -> int:
        """Re-encrypt every stored token under the newest key, in one transaction; how many tokens."""
        box = self._db.box
        rotated = 0
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                "SELECT id, bot_token_enc, bot_refresh_token_enc FROM slack_installations ORDER BY id"
            )
            for row in rows:
                refresh = row["bot_refresh_token_enc"]
                changed = await tx.execute(
                    "UPDATE slack_installations SET bot_token_enc = ?, bot_refresh_token_enc = ? "
                    "WHERE id = ? AND bot_token_enc = ?",
                    [
                        box.rotate(str(row["bot_token_enc"])),
                        None if refresh is None else box.rotate(str(refresh)),
                        row["id"],
                        row["bot_token_enc"],
                    ],
                )
                rotated += changed * (1 if refresh is None else 2)
        return rotated


class OAuthStates:
    """OAuth `state` values: each issued one is good once, for 10 minutes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def issue(self, *, now: datetime | None = None) -> str:
        """A new random state, valid for STATE_LIFETIME; expired ones are swept at the same time."""
        moment = now or datetime.now(UTC)
        state = secrets.token_urlsafe(32)
        await self._db.execute("DELETE FROM slack_oauth_states WHERE expires_at < ?", [iso(moment)])
        await self._db.execute(
            "INSERT INTO slack_oauth_states (state, expires_at) VALUES (?, ?)",
            [state, iso(moment + STATE_LIFETIME)],
        )
        return state

    async def consume(self, state: str | None, *, now: datetime | None = None) -> bool:
        """True once for a state issued here less than 10 minutes ago; False for any other (and after)."""
        if not state or len(state) > 200:
            return False
        row = await self._db.fetch_one(
            "DELETE FROM slack_oauth_states WHERE state = ? RETURNING expires_at", [state]
        )
        if row is None:
            return False
        moment = now or datetime.now(UTC)
        return iso(moment) < str(row["expires_at"])

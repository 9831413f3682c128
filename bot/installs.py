"""The workspaces that installed the app (OAuth mode): save, find (cached per team), list and forget.

`find` answers from memory after the first look-up of a team, so authorizing a request costs no database
round trip; saving or forgetting a team drops its entry at once. An entry also expires after `ttl`
seconds, so a replica learns of an uninstall handled by another one within that time. Nothing here knows
Slack: refreshing a rotating token is the Slack door's job, which saves the result here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from storage.audit import AuditLog, NewAuditEntry
from storage.installations import Forgotten, InstallationStore, OAuthStates, StoredInstallation

__all__ = ["Forgotten", "Installs", "StoredInstallation"]

_Key = tuple[str | None, str | None, bool]


@dataclass(frozen=True)
class _Entry:
    at: float
    installation: StoredInstallation | None


@dataclass(frozen=True, eq=False)  # eq=False: one service, told apart by identity
class Installs:
    """Installations with a per-team in-memory cache in front of the store."""

    _store: InstallationStore
    _states: OAuthStates
    _audit: AuditLog
    _: KW_ONLY
    ttl: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _cache: dict[_Key, _Entry] = field(default_factory=dict, init=False, repr=False)

    async def find(
        self, *, team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool = False
    ) -> StoredInstallation | None:
        """The installation serving this team (or org), from memory when known; None when not installed."""
        key = (enterprise_id, team_id, is_enterprise_install)
        entry = self._cache.get(key)
        now = self.clock()
        # "Not installed" is kept briefly only: an install handled by another replica shows up soon.
        ttl = self.ttl if entry is None or entry.installation is not None else min(self.ttl, 10.0)
        if entry is not None and now - entry.at < ttl:
            return entry.installation
        found = await self._store.find(
            team_id=team_id, enterprise_id=enterprise_id, is_enterprise_install=is_enterprise_install
        )
        self._cache[key] = _Entry(now, found)
        return found

    async def save(self, installation: StoredInstallation) -> None:
        """Store an installation (new, reinstalled, or with a refreshed token) and drop stale entries."""
        await self._store.save(installation)
        self._drop(installation.team_id, installation.enterprise_id, installation.is_enterprise_install)

    async def installed(self, installation: StoredInstallation) -> None:
        """A workspace installed the app through OAuth: store it and note it in the audit log."""
        await self.save(installation)
        await self._audit.record(
            NewAuditEntry(
                team_id=installation.team_id or "",
                enterprise_id=installation.enterprise_id,
                user_id=installation.installed_by or "",
                channel_id="",
                operation="install",
                summary=f"scopes={','.join(installation.bot_scopes)}",
                outcome="ok",
            )
        )

    async def forget(
        self,
        *,
        team_id: str | None,
        enterprise_id: str | None = None,
        is_enterprise_install: bool = False,
        why: str,
    ) -> Forgotten:
        """Delete the workspace's Slack tokens, Twilio accounts, routes and conversations at once; the audit
        log keeps a line."""
        gone = await self._store.forget(
            team_id=team_id, enterprise_id=enterprise_id, is_enterprise_install=is_enterprise_install
        )
        self._drop(team_id, enterprise_id, is_enterprise_install)
        summary = (
            f"{why}: removed {gone.installations} installation(s), {gone.accounts} Twilio account(s), "
            f"{gone.routes} route(s), {gone.conversations} conversation(s)"
        )
        await self._audit.record(
            NewAuditEntry(
                team_id=team_id or "",
                enterprise_id=enterprise_id,
                user_id="",
                channel_id="",
                operation="uninstall",
                summary=summary,
                outcome="ok",
            )
        )
        return gone

    async def issue_state(self) -> str:
        """A new OAuth state for an install link, good once for 10 minutes."""
        return await self._states.issue()

    async def consume_state(self, state: str | None) -> bool:
        """True once for a state issued here less than 10 minutes ago."""
        return await self._states.consume(state)

    async def all(self) -> list[StoredInstallation]:
        """Every installation, oldest first (for the admin CLI)."""
        return await self._store.list()

    def _drop(self, team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool) -> None:
        for key in list(self._cache):
            cached_enterprise, cached_team, _ = key
            if (team_id and cached_team == team_id) or (
                is_enterprise_install and enterprise_id and cached_enterprise == enterprise_id
            ):
                del self._cache[key]

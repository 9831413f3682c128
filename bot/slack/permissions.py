"""Who may manage accounts: workspace admins and owners (users.info), plus ADMIN_USER_IDS."""

from __future__ import annotations

import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient


class Permissions:
    """Answers `is_admin` from ADMIN_USER_IDS or Slack's users.info, cached briefly per user."""

    def __init__(
        self,
        admin_user_ids: frozenset[str],
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._admins = admin_user_ids
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}

    async def is_admin(self, client: AsyncWebClient, team_id: str, user_id: str) -> bool:
        """True for listed admins and for workspace admins/owners; False when Slack cannot tell."""
        if user_id in self._admins:
            return True
        key = (team_id, user_id)
        cached = self._cache.get(key)
        now = self._clock()
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        try:
            resp = await client.users_info(user=user_id)
        except SlackApiError:
            return False  # fail closed: an unknown user is not an admin
        user = resp.get("user") or {}
        admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self._cache[key] = (now, admin)
        return admin

"""Many workspaces: teams, their bot tokens, and what installing or uninstalling the app does to them.

Every Web API call is made as the team its token belongs to (`Caller`): a channel, user or file of
another team is ``channel_not_found``/``user_not_found``/``file_not_found`` to it. The first team is
installed with the simulator's ``bot_token``; `add_team` makes another (installed, with a bot token of
its own, unless ``install=False``: then only OAuth installs it). A revoked token answers
``token_revoked``, an expired one (token rotation) ``token_expired``, an unknown one ``invalid_auth``.

`await uninstall_app(team_id)` does what removing the app in Slack does: every token of the team is
revoked and the bot gets ``tokens_revoked`` and ``app_uninstalled`` (in that order, or the other with
``events_order="uninstalled_first"``: Slack does not promise one). `await revoke_tokens(team_id)` sends
only ``tokens_revoked``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Collection, Iterable
from typing import Literal

from bot.sandbox.slack.events import EventsApi
from bot.sandbox.slack.records import Delivery, Json, _ApiError, _Token
from bot.sandbox.slack.workspace import Caller, Team, _Channel, _User, new_team, team_channels, team_people

TOKEN_TTL = 12 * 3600.0  # with token rotation, an access token lives 12 hours


class Teams(EventsApi):
    """The teams the app is installed in, their tokens, and who is calling."""

    def add_team(
        self,
        name: str,
        *,
        team_id: str | None = None,
        domain: str | None = None,
        enterprise_id: str | None = None,
        install: bool = True,
    ) -> Team:
        """Another workspace with an admin, a member, #general, #ops and a private channel of its own."""
        team = new_team(len(self.teams) + 1, name, team_id, domain, enterprise_id)
        if team.id in self.teams:
            raise ValueError(f"there is already a team {team.id}")
        self.teams[team.id] = team
        self.users.update(team_people(team, self.manifest.bot_name, self.manifest.app_name))
        for channel in team_channels(team).values():
            self.channels[channel.id] = channel
            self._messages[channel.id] = []
        if install:
            self.issue_bot_token(team.id)
        return team

    def add_channel(
        self,
        name: str,
        *,
        team_id: str | None = None,
        private: bool = False,
        members: Iterable[str] | None = None,
        bot_member: bool = True,
        channel_id: str | None = None,
    ) -> str:
        """A new channel (everyone in the team by default, with the bot unless not `bot_member`); its id."""
        team = self._team(team_id)
        if any(c.name == name and self._team_of_channel(c).id == team.id for c in self.channels.values()):
            raise ValueError(f"there is already a #{name} in {team.id}")
        people = list(members) if members is not None else [u.id for u in self._people(team) if not u.is_bot]
        if bot_member and team.bot_user_id not in people:
            people.append(team.bot_user_id)
        cid = channel_id or self._short_id("C")
        self.channels[cid] = _Channel(cid, name, private, people, "", team.id, team.bot_user_id)
        self._messages[cid] = []
        return cid

    def add_user(
        self, name: str, *, team_id: str | None = None, admin: bool = False, user_id: str | None = None
    ) -> str:
        """A new person in a team (not in any channel yet: pass them to `add_channel`); their id."""
        team = self._team(team_id)
        uid = user_id or self._short_id("U")
        self.users[uid] = _User(uid, name, name.title(), is_admin=admin, team_id=team.id)
        return uid

    def bot_token_of(self, team_id: str | None = None) -> str | None:
        """The newest live bot token of a team (None: the app is not installed there)."""
        team = self._team(team_id)
        live = [t for t in self._tokens.values() if t.team_id == team.id and not t.revoked]
        return live[-1].value if live else None

    def installed(self, team_id: str | None = None) -> bool:
        """Whether the app has a live token in the team."""
        return self.bot_token_of(team_id) is not None

    def issue_bot_token(self, team_id: str | None = None, scopes: Collection[str] | None = None) -> str:
        """Install the app in a team without OAuth: a new bot token (xoxb-…, or xoxe.xoxb-… rotating)."""
        team = self._team(team_id)
        prefix = "xoxe.xoxb" if self.token_rotation else "xoxb"
        value = f"{prefix}-{team.id}-{secrets.token_hex(12)}"
        expires = self._clock() + TOKEN_TTL if self.token_rotation else None
        self._tokens[value] = _Token(
            value, team.id, frozenset(scopes) if scopes is not None else None, expires
        )
        return value

    def token_scopes(self, token: str) -> frozenset[str] | None:
        """The scopes a token was granted (None: the app's configured scopes, or no checks)."""
        record = self._tokens.get(token)
        if record is None:
            raise LookupError("no such token")
        return record.scopes if record.scopes is not None else self.scopes

    async def revoke_tokens(self, team_id: str | None = None) -> list[Delivery]:
        """Revoke every token of a team and send ``tokens_revoked``; returns its deliveries."""
        team, revoked = self._revoke_all(team_id)
        return await self._await_event(self._raise_event(team, self._tokens_revoked_event(team, revoked)))

    async def uninstall_app(
        self,
        team_id: str | None = None,
        *,
        events_order: Literal["revoked_first", "uninstalled_first"] = "revoked_first",
    ) -> list[Delivery]:
        """Remove the app from a team: tokens revoked, then ``tokens_revoked`` and ``app_uninstalled``."""
        team, revoked = self._revoke_all(team_id)
        events: list[Json] = [
            self._tokens_revoked_event(team, revoked),
            {"type": "app_uninstalled", "event_ts": self._next_ts()},
        ]
        if events_order == "uninstalled_first":
            events.reverse()
        delivered: list[Delivery] = []
        for event in events:
            delivered += await self._await_event(self._raise_event(team, event))
        return delivered

    # ----- helpers -------------------------------------------------------------------------------

    def _people(self, team: Team) -> list[_User]:
        return [u for u in self.users.values() if self._team_of_user(u).id == team.id]

    def _revoke_all(self, team_id: str | None) -> tuple[Team, list[str]]:
        team = self._team(team_id)
        revoked = []
        for token in self._tokens.values():
            if token.team_id == team.id and not token.revoked:
                token.revoked = True
                revoked.append(token.value)
        for refresh, owner in list(self._refresh_tokens.items()):
            if owner == team.id:
                del self._refresh_tokens[refresh]
        return team, revoked

    def _tokens_revoked_event(self, team: Team, revoked: list[str]) -> Json:
        return {
            "type": "tokens_revoked",
            "tokens": {"oauth": [], "bot": [team.bot_user_id] if revoked else []},
            "event_ts": self._next_ts(),
        }

    @staticmethod
    async def _await_event(task: asyncio.Task[list[Delivery]] | None) -> list[Delivery]:
        return await task if task is not None else []

    def _caller(self, token: str) -> Caller:
        """The team and scopes behind a token, or the error Slack gives for it."""
        record = self._tokens.get(token)
        if record is None:
            raise _ApiError("invalid_auth")
        if record.revoked:
            raise _ApiError("token_revoked")
        if record.expires_at is not None and self._clock() >= record.expires_at:
            raise _ApiError("token_expired")
        team = self.teams[record.team_id]
        return Caller(team, token, record.scopes if record.scopes is not None else self.scopes)

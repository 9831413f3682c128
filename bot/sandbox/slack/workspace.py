"""The simulated workspaces: each team, its people and channels, with the IDs tests and the playground use.

The first team (`TEAM_ID`) is built with the simulator and keeps the well-known IDs below; `add_team`
makes more, each with its own bot user, people and channels (`Team` lists their IDs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.sandbox.slack.records import Json

TEAM_ID = "T0PLAYGRND"
TEAM_DOMAIN = "playground"
API_APP_ID = "A0PLAYGRND"
ADMIN_ID = "U0ADMIN"
MEMBER_ID = "U0MEMBER"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
GENERAL_ID = "C0GENERAL"
OPS_ID = "C0OPSROOM"  # IDs as long as real ones, so `/twilio log-channel C0OPSROOM` works
PRIVATE_ID = "C0PRIVATE"
VERIFICATION_TOKEN = "playground-verification-token"  # noqa: S105 - Slack's deprecated, public field


@dataclass(frozen=True)
class Team:
    """A workspace and the IDs of its bot, people and channels (the same app is installed in each)."""

    id: str
    name: str
    domain: str
    bot_user_id: str = BOT_USER_ID
    bot_id: str = BOT_ID
    admin_id: str = ADMIN_ID
    member_id: str = MEMBER_ID
    general_id: str = GENERAL_ID
    ops_id: str = OPS_ID
    private_id: str = PRIVATE_ID
    enterprise_id: str | None = None

    def to_json(self) -> Json:
        """A JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Caller:
    """Who is calling the Web API: the team its token belongs to, and what that token may do."""

    team: Team
    token: str
    scopes: frozenset[str] | None  # None: no scope checks


@dataclass
class _User:
    id: str
    name: str
    real_name: str
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    tz: str = "Europe/London"
    tz_offset: int = 0
    team_id: str | None = None  # None: the first team
    bot_id: str = BOT_ID

    def to_slack(self, team_id: str) -> Json:
        profile: Json = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "team": team_id,
            "image_48": "",
        }
        if self.is_bot:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": "Greenwich Mean Time",
            "tz_offset": self.tz_offset,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": self.is_owner,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }


@dataclass
class _Channel:
    id: str
    name: str
    is_private: bool
    members: list[str]
    topic: str = ""
    team_id: str | None = None  # None: the first team
    bot_user_id: str = field(default=BOT_USER_ID)

    @property
    def bot_member(self) -> bool:
        return self.bot_user_id in self.members

    def to_slack(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": self.name == "general",
            "is_member": self.bot_member,
            "created": 1_700_000_000,
            "creator": ADMIN_ID,
            "num_members": len(self.members),
            "topic": {"value": self.topic, "creator": ADMIN_ID, "last_set": 1_700_000_000},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


def _handle(name: str) -> str:
    """A Slack user name (handle) from a display name: ``Twilio Bridge`` → ``twilio_bridge``."""
    return re.sub(r"[^a-z0-9._-]+", "_", name.lower()).strip("_") or "bot"


def default_users(bot_name: str, app_name: str) -> dict[str, _User]:
    """Ada the admin, Max a member, and the bot's own user, by id."""
    return {
        u.id: u
        for u in (
            _User(ADMIN_ID, "ada", "Ada Admin", is_admin=True),
            _User(MEMBER_ID, "max", "Max Member"),
            _User(BOT_USER_ID, _handle(bot_name), app_name, is_bot=True),
        )
    }


def default_channels() -> dict[str, _Channel]:
    """#general and #ops with the bot in them, and a private channel without it, by id."""
    return {
        c.id: c
        for c in (
            _Channel(GENERAL_ID, "general", False, [ADMIN_ID, MEMBER_ID, BOT_USER_ID], "Company-wide"),
            _Channel(OPS_ID, "ops", False, [ADMIN_ID, MEMBER_ID, BOT_USER_ID], "Where SMS gets sent"),
            _Channel(PRIVATE_ID, "private-team", True, [ADMIN_ID, MEMBER_ID], "The bot is not in here"),
        )
    }


def team_people(team: Team, bot_name: str, app_name: str) -> dict[str, _User]:
    """An admin, a member and the bot's user for an added team, by id."""
    return {
        u.id: u
        for u in (
            _User(team.admin_id, "ada", "Ada Admin", is_admin=True, team_id=team.id),
            _User(team.member_id, "max", "Max Member", team_id=team.id),
            _User(
                team.bot_user_id,
                _handle(bot_name),
                app_name,
                is_bot=True,
                team_id=team.id,
                bot_id=team.bot_id,
            ),
        )
    }


def team_channels(team: Team) -> dict[str, _Channel]:
    """#general and #ops with the bot in them, and a private channel without it, for an added team."""
    people = [team.admin_id, team.member_id]
    return {
        c.id: c
        for c in (
            _Channel(
                team.general_id, "general", False, [*people, team.bot_user_id], "", team.id, team.bot_user_id
            ),
            _Channel(team.ops_id, "ops", False, [*people, team.bot_user_id], "", team.id, team.bot_user_id),
            _Channel(team.private_id, "private-team", True, list(people), "", team.id, team.bot_user_id),
        )
    }


def new_team(
    number: int, name: str, team_id: str | None, domain: str | None, enterprise_id: str | None
) -> Team:
    """The `number`-th team (2, 3, …) with IDs of its own: ``U2ADMIN``, ``C2GENERAL``, ``B2BOT``…"""
    n = str(number)
    return Team(
        id=team_id or f"T0TEAM{number:03d}",
        name=name,
        domain=domain or (_handle(name).replace("_", "-") or f"team{n}"),
        bot_user_id=f"U{n}BOT",
        bot_id=f"B{n}BOT",
        admin_id=f"U{n}ADMIN",
        member_id=f"U{n}MEMBER",
        general_id=f"C{n}GENERAL",
        ops_id=f"C{n}OPSROOM",
        private_id=f"C{n}PRIVATE",
        enterprise_id=enterprise_id,
    )

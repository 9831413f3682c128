"""The simulated workspace: its team, people and channels, with the IDs tests and the playground use."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
            profile["bot_id"] = BOT_ID
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

    @property
    def bot_member(self) -> bool:
        return BOT_USER_ID in self.members

    def to_slack(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": self.id == GENERAL_ID,
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

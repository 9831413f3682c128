"""Reactions: ``reactions.add`` and ``reactions.remove`` (scope ``reactions:write``), ``reactions.get``.

Reactions are kept on the message as Slack shows them (``reactions: [{name, users, count}]``), so tests
and the page can see which reaction the bot put on a reply.
"""

from __future__ import annotations

import copy
import re

from bot.sandbox.slack.records import Json, _ApiError
from bot.sandbox.slack.web_api import WebApi
from bot.sandbox.slack.workspace import Caller

_NAME = re.compile(r"[a-z0-9_+'-]{1,100}(::skin-tone-[2-6])?")


class Reactions(WebApi):
    """Adds and removes the bot's reactions on messages of its team's channels."""

    def reactions_on(self, channel: str, ts: str) -> dict[str, list[str]]:
        """The reactions on a message: name → who reacted."""
        message = self.message(channel, ts)
        return {r["name"]: list(r["users"]) for r in message.get("reactions", [])}

    def _reaction_target(self, args: Json, caller: Caller) -> tuple[str, Json, str]:
        channel = self._writable_channel(args, caller)
        message = self._find_message(channel.id, str(args.get("timestamp") or ""))
        name = str(args.get("name") or "").strip(":")
        if not _NAME.fullmatch(name):
            raise _ApiError("invalid_name")
        return channel.id, message, name

    def _reactions_add(self, args: Json, caller: Caller) -> Json:
        channel_id, message, name = self._reaction_target(args, caller)
        reactions = message.setdefault("reactions", [])
        found = next((r for r in reactions if r["name"] == name), None)
        if found is None:
            found = {"name": name, "users": [], "count": 0}
            reactions.append(found)
        if caller.team.bot_user_id in found["users"]:
            raise _ApiError("already_reacted")
        found["users"].append(caller.team.bot_user_id)
        found["count"] = len(found["users"])
        self._broadcast("message_changed", {"channel": channel_id, "message": message})
        return {"ok": True}

    def _reactions_remove(self, args: Json, caller: Caller) -> Json:
        channel_id, message, name = self._reaction_target(args, caller)
        reactions = message.get("reactions", [])
        found = next((r for r in reactions if r["name"] == name), None)
        if found is None or caller.team.bot_user_id not in found["users"]:
            raise _ApiError("no_reaction")
        found["users"].remove(caller.team.bot_user_id)
        found["count"] = len(found["users"])
        if not found["users"]:
            reactions.remove(found)
        if not reactions:
            message.pop("reactions", None)
        self._broadcast("message_changed", {"channel": channel_id, "message": message})
        return {"ok": True}

    def _reactions_get(self, args: Json, caller: Caller) -> Json:
        channel = self._visible_channel(args, caller)
        message = self._find_message(channel.id, str(args.get("timestamp") or ""))
        return {"ok": True, "type": "message", "channel": channel.id, "message": copy.deepcopy(message)}


METHODS = {
    "reactions.add": Reactions._reactions_add,
    "reactions.remove": Reactions._reactions_remove,
    "reactions.get": Reactions._reactions_get,
}

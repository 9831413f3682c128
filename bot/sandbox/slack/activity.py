"""What simulated people do in channels, as events the bot receives: post, reply, attach, edit, delete.

`await post_message(channel, text, user=…, thread_ts=None, files=None, broadcast=False)` stores the
message as Slack would (a reply in a thread, broadcast to the channel with ``broadcast``, a
``file_share`` with `SimFile`s) and sends the bot its ``message`` event (see `events`: only from
channels the bot is in, only if the app subscribes); `edit_message` and `delete_message` send
``message_changed`` and ``message_deleted``. Each returns once the event (and any retry) is delivered.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence

from bot.sandbox.slack.client import escape_mrkdwn
from bot.sandbox.slack.files import Files, SimFile
from bot.sandbox.slack.records import Json, _ApiError
from bot.sandbox.slack.workspace import _Channel


class UserActivity(Files):
    """People posting, replying, attaching files, editing and deleting, with the events that follow."""

    async def post_message(
        self,
        channel: str,
        text: str,
        *,
        user: str | None = None,
        thread_ts: str | None = None,
        files: Sequence[SimFile] | None = None,
        broadcast: bool = False,
    ) -> Json:
        """A person posts in a channel (or replies in a thread); returns the stored message."""
        where = self._channel(channel)
        team = self._team_of_channel(where)
        author = self._user(user or team.admin_id)
        if self._team_of_user(author).id != team.id:
            raise LookupError(f"{author.id} is not in the team of {where.id}")
        message: Json = {
            "type": "message",
            "user": author.id,
            "text": escape_mrkdwn(text),
            "ts": self._next_ts(),
            "team": team.id,
            "client_msg_id": str(uuid.uuid4()),
        }
        if thread_ts is not None:
            try:
                parent = self._find_message(where.id, thread_ts)
            except _ApiError:
                raise LookupError(f"no message {thread_ts} in {where.id} to reply to") from None
            message.update(thread_ts=thread_ts, parent_user_id=parent.get("user"))
            if broadcast:
                message.update(subtype="thread_broadcast", root=copy.deepcopy(parent))
        if files:
            message.update(files=self._attach(team, author.id, where.id, list(files)), upload=False)
            message.setdefault("subtype", "file_share")
        self._store_message(where.id, message)
        await self._send(where, self._message_event(where, message))
        return copy.deepcopy(message)

    async def edit_message(self, channel: str, ts: str, text: str) -> Json:
        """The author edits their message: ``message_changed``; returns the message as it is now."""
        where = self._channel(channel)
        message = self._people_message(where, ts)
        previous = copy.deepcopy(message)
        message["text"] = escape_mrkdwn(text)
        message["edited"] = {"user": message["user"], "ts": self._next_ts()}
        self._broadcast("message_changed", {"channel": where.id, "message": message})
        await self._send(where, self._changed_event(where, message, previous))
        return copy.deepcopy(message)

    async def delete_message(self, channel: str, ts: str) -> None:
        """The author deletes their message: ``message_deleted``."""
        where = self._channel(channel)
        message = self._people_message(where, ts)
        self._messages[where.id].remove(message)
        parent_ts = message.get("thread_ts")
        if parent_ts and parent_ts != ts:
            for parent in self._messages[where.id]:
                if parent["ts"] == parent_ts and parent.get("reply_count"):
                    parent["reply_count"] -= 1
        self._broadcast("message_deleted", {"channel": where.id, "ts": ts})
        await self._send(where, self._deleted_event(where, message))

    def _people_message(self, channel: _Channel, ts: str) -> Json:
        try:
            message = self._find_message(channel.id, ts)
        except _ApiError:
            raise LookupError(f"no message {ts} in {channel.id}") from None
        if message.get("bot_id"):
            raise LookupError(f"{ts} is the bot's message: the bot edits it with chat.update")
        return message

    async def _send(self, channel: _Channel, event: Json) -> None:
        task = self._raise_channel_event(channel, event)
        if task is not None:
            await task

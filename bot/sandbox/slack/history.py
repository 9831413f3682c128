"""``conversations.history``: a channel's messages newest first, paged, with message metadata on request.

Top-level messages (and thread replies broadcast to the channel) between ``oldest`` and ``latest``
(exclusive unless ``inclusive``), at most ``limit`` (default 100, at most 999) a page, the next page by
``response_metadata.next_cursor``. Metadata (``chat.postMessage``'s ``metadata``) is in a message only
with ``include_all_metadata=true``. A public channel needs ``channels:history`` and a private one
``groups:history``; a channel the bot is not in answers ``not_in_channel`` (``channel_not_found`` when
private, as Slack hides those).
"""

from __future__ import annotations

import base64
import binascii
import copy

from bot.sandbox.slack.records import Json, _ApiError
from bot.sandbox.slack.web_api import WebApi
from bot.sandbox.slack.workspace import Caller

MAX_HISTORY_LIMIT = 999
_TRUE = ("true", "1", True, 1)


def _ts_arg(args: Json, name: str) -> float | None:
    raw = args.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(str(raw))
    except ValueError:
        raise _ApiError("invalid_ts_" + name) from None


def _cursor(raw: object) -> int:
    if raw in (None, ""):
        return 0
    try:
        decoded = base64.b64decode(str(raw), validate=True).decode()
        offset = int(decoded.removeprefix("next_ts:"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _ApiError("invalid_cursor") from None
    return offset


class History(WebApi):
    """``conversations.history`` with metadata, paging and the history scopes."""

    def _conversations_history(self, args: Json, caller: Caller) -> Json:
        channel = self._api_channel(args, caller, not_member="channel_not_found")
        needed = "groups:history" if channel.is_private else "channels:history"
        if caller.scopes is not None and needed not in caller.scopes:
            raise _ApiError("missing_scope", needed=needed, provided=",".join(sorted(caller.scopes)))
        if not channel.bot_member:
            raise _ApiError("not_in_channel")
        try:
            limit = int(args.get("limit") or 100)
        except (TypeError, ValueError):
            raise _ApiError("invalid_limit") from None
        limit = max(1, min(limit, MAX_HISTORY_LIMIT))
        oldest, latest = _ts_arg(args, "oldest"), _ts_arg(args, "latest")
        inclusive = args.get("inclusive") in _TRUE
        with_metadata = args.get("include_all_metadata") in _TRUE
        start = _cursor(args.get("cursor"))

        def in_range(ts: float) -> bool:
            above = oldest is None or ts > oldest or (inclusive and ts == oldest)
            below = latest is None or ts < latest or (inclusive and ts == latest)
            return above and below

        found = [
            m
            for m in reversed(self._messages[channel.id])
            if (m.get("thread_ts", m["ts"]) == m["ts"] or m.get("subtype") == "thread_broadcast")
            and in_range(float(m["ts"]))
        ]
        page = [copy.deepcopy(m) for m in found[start : start + limit]]
        if not with_metadata:
            for message in page:
                message.pop("metadata", None)
        more = len(found) > start + limit
        cursor = base64.b64encode(f"next_ts:{start + limit}".encode()).decode() if more else ""
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }


METHODS = {"conversations.history": History._conversations_history}

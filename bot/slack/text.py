"""Text that goes into Slack mrkdwn: escaping, cutting to Block Kit limits, dates and mentions.

Anything that came from a user, from an SMS or from Twilio goes through `escape` (or `safe`) before it
reaches mrkdwn, so an SMS body saying `<!channel>` shows literally and pings nobody. Text is cut before it
is escaped, so an entity such as `&amp;` is never split in half.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = [
    "ELLIPSIS",
    "code",
    "cut",
    "escape",
    "is_user_id",
    "mention",
    "one_line",
    "safe",
    "slack_date",
    "who",
]

ELLIPSIS = "…"

# Slack user IDs: U… for ordinary users, W… for Enterprise Grid users.
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,31}")
# Date tokens Slack knows, plus plain words and punctuation; never "|", "^", "<" or ">".
_DATE_FORMAT = re.compile(r"[A-Za-z0-9_{} ,.:/@'-]{1,100}")
_ESCAPED_WIDTH = {"&": 5, "<": 4, ">": 4}
_WHITESPACE = re.compile(r"\s+")


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` (in that order) so Slack shows the text literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, ending in "…" (which counts) when anything was dropped."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    if len(text) <= limit:
        return text
    if limit == 0:
        return ""
    return text[: limit - 1].rstrip() + ELLIPSIS


def safe(text: str, limit: int) -> str:
    """Escape `text` and keep the result within `limit` characters, cutting before escaping.

    Escaping can make text up to five times longer, so the cut point is found on the escaped length:
    the longest prefix whose escaped form plus "…" fits.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    if limit == 0:
        return ""
    room = limit - len(ELLIPSIS)
    used = 0
    end = 0
    for char in text:
        width = _ESCAPED_WIDTH.get(char, 1)
        if used + width > room:
            break
        used += width
        end += 1
    return escape(text[:end].rstrip()) + ELLIPSIS


def literal(text: str, limit: int) -> str:
    """`text` as a code block, escaped and within `limit`: shown as typed, with no *bold* or _italics_.

    For message bodies: an SMS shows asterisks and underscores as they are, so the card must too. A run
    of three backticks inside would close the block early, so a zero-width space breaks it up.
    """
    fence = "```"
    return fence + safe(text.replace(fence, "`\u200b``"), limit - 2 * len(fence)) + fence


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) into single spaces, for one-line previews."""
    return _WHITESPACE.sub(" ", text).strip()


def code(text: str, limit: int = 200) -> str:
    """Show `text` as inline code, escaped and cut; backticks inside would end the code span early."""
    cleaned = one_line(text).replace("`", "'")
    return f"`{safe(cleaned, max(limit - 2, 1))}`" if cleaned else ""


def slack_date(dt: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A date Slack shows in each reader's own time zone: `<!date^UNIX^fmt|2026-12-01T15:00:00Z>`.

    A naive datetime is taken as UTC. The fallback (for clients that cannot format dates) is ISO UTC.
    """
    if not _DATE_FORMAT.fullmatch(fmt):
        raise ValueError(f"unsupported date format {fmt!r}")
    aware = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    fallback = aware.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"<!date^{int(aware.timestamp())}^{fmt}|{fallback}>"


def is_user_id(user_id: str) -> bool:
    """Whether `user_id` looks like a Slack user ID (`U…` or `W…`)."""
    return _USER_ID.fullmatch(user_id) is not None


def mention(user_id: str) -> str:
    """`<@U…>` for a Slack user ID; ValueError for anything else, so user text never forms a mention."""
    if not is_user_id(user_id):
        raise ValueError(f"not a Slack user ID: {user_id[:40]!r}")
    return f"<@{user_id}>"


def who(user_id: str) -> str:
    """A mention for a real user ID; anything else (a CLI user, a missing ID) shown escaped, never pinging."""
    if is_user_id(user_id):
        return f"<@{user_id}>"
    return safe(user_id, 40) if user_id else "someone"

"""Words of a `/twilio` command as typed: Slack's escapes and references undone, then split like a shell.

Slack sends the text after `/twilio` as typed, except that it escapes `&`, `<` and `>` and may wrap
phone numbers, links and mentions as `<tel:…|…>`, `<https://…|…>`, `<@U…|name>`. `unwrap` and
`unescape` undo that; `tokenize` splits words like a shell would but never fails on an unbalanced
quote (apostrophes are common in message bodies), and keeps each word's span so the grammar can take
a message body from the original text with its spacing and newlines.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

__all__ = ["FLAG", "Token", "tokenize", "unescape", "unwrap"]

# "--from", and "—from"/"–from" because macOS turns a typed "--" into a dash.
FLAG = re.compile(r"(--|—|–)([A-Za-z][A-Za-z_-]*)")

# --- text clean-up --------------------------------------------------------------------------------

# Slack's formatted references: <tel:+1…|+1 555…>, <mailto:a@b|a@b>, <https://x|x>, <@U…|name>,
# <#C…|name>, <!here>, <!subteam^S…|@team>.
_SLACK_REF = re.compile(r"<([^<>|\s]+)(?:\|([^<>]*))?>")


def unwrap(text: str, *, mentions: bool) -> str:
    """Turn Slack's formatted references back into what the user typed."""

    def plain(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        lowered = target.lower()
        if lowered.startswith(("tel:", "sms:", "mailto:")):
            return target.split(":", 1)[1]
        if lowered.startswith(("http://", "https://")):
            return label or target
        if not mentions:
            return match.group(0)
        if target.startswith("@"):
            return f"@{label}" if label else target
        if target.startswith("#"):
            return f"#{label}" if label else target
        if target.startswith("!"):
            if label:
                return label
            return "@" + target[1:]
        return match.group(0)

    return _SLACK_REF.sub(plain, text)


def unescape(text: str) -> str:
    """Undo the three escapes Slack applies to command text; &amp; last so "&amp;lt;" stays "&lt;"."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# --- tokens ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One word of the command: its value (quotes removed) and its span in the cleaned text."""

    value: str
    start: int
    end: int
    quoted: bool


# Opening quote → closing quotes; curly ones because macOS and phones "smarten" what people type.
_QUOTES = {'"': '"”', "'": "'’", "“": "”\"", "‘": "’'"}  # fmt: skip


# A word: a run of what str.isspace() does not call whitespace (re's \s is the same set for str).
_WORD = re.compile(r"\S+")
# A quote character that ends a word: followed by whitespace or the end of the text.
_CLOSING_QUOTE = re.compile(r"[\"'”’](?=\s|\Z)")


def tokenize(text: str) -> list[Token]:
    """Split on whitespace, honouring quotes that open a word and close one.

    A quote only groups when it starts a word and a matching quote ends a later word; otherwise it
    is an ordinary character, so "don't" and an unbalanced quote never raise.
    """
    closers = _closing_positions(text)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while (found := _WORD.search(text, i)) is not None:
        i, j = found.span()
        # With no quote ending any word (most commands), nothing can group: skip the look-ups.
        close = _find_close(closers, text[i], i + 1) if closers else None
        if close is not None:
            tokens.append(Token(text[i + 1 : close], i, close + 1, True))
            i = close + 1
            continue
        word = found.group()
        # --flag="quoted value with spaces"
        eq = word.find("=") if closers else -1
        if eq > 0 and FLAG.fullmatch(word[:eq]) and i + eq + 1 < n:
            close = _find_close(closers, text[i + eq + 1], i + eq + 2)
            if close is not None:
                value = word[: eq + 1] + text[i + eq + 2 : close]
                tokens.append(Token(value, i, close + 1, False))
                i = close + 1
                continue
        tokens.append(Token(word, i, j, False))
        i = j
    return tokens


def _closing_positions(text: str) -> dict[str, list[int]]:
    """Positions of each quote character that ends a word (followed by whitespace or the end)."""
    positions: dict[str, list[int]] = {}
    for found in _CLOSING_QUOTE.finditer(text):
        positions.setdefault(found.group(), []).append(found.start())
    return positions


def _find_close(closers: dict[str, list[int]], opener: str, start: int) -> int | None:
    """The first position >= start of a quote closing `opener`, or None (not a quote, or unbalanced)."""
    if opener not in _QUOTES:
        return None
    found: int | None = None
    for ch in _QUOTES[opener]:
        spots = closers.get(ch, [])
        k = bisect.bisect_left(spots, start)
        if k < len(spots) and (found is None or spots[k] < found):
            found = spots[k]
    return found

"""The one SQL dialect the repositories write, and its translation to each engine.

Repositories write SQLite-style placeholders (`?` and `:name`) and PostgreSQL's row locks
(`FOR UPDATE SKIP LOCKED`). This is the only place that turns that into what each engine takes:
psycopg's `%s` / `%(name)s` (with literal `%` doubled) for PostgreSQL; for SQLite the row-lock clause
is dropped, because its immediate transaction already holds the only write lock there is.
"""

from __future__ import annotations

import functools
import re

__all__ = ["for_postgres", "for_sqlite"]

# Quoted text and comments are copied untouched; `::` is a PostgreSQL cast, not a placeholder.
_TOKENS = re.compile(
    r"""
      (?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|::)
    | (?P<positional>\?)
    | :(?P<named>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<percent>%)
    """,
    re.VERBOSE | re.DOTALL,
)
_ROW_LOCK = re.compile(r"\s+FOR\s+UPDATE(?:\s+SKIP\s+LOCKED|\s+NOWAIT)?\s*$", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def for_postgres(sql: str) -> str:
    """`sql` with `?` as `%s` and `:name` as `%(name)s` outside quotes and comments, and every `%` as `%%`."""

    def swap(match: re.Match[str]) -> str:
        if match.group("skip") is not None:
            # psycopg reads `%` everywhere, even inside quotes.
            return match.group("skip").replace("%", "%%")
        if match.group("positional") is not None:
            return "%s"
        if match.group("named") is not None:
            return f"%({match.group('named')})s"
        return "%%"

    return _TOKENS.sub(swap, sql)


@functools.lru_cache(maxsize=512)
def for_sqlite(sql: str) -> str:
    """`sql` without a trailing `FOR UPDATE [SKIP LOCKED | NOWAIT]`, which SQLite does not parse."""
    return _ROW_LOCK.sub("", sql)

"""Errors that carry a sentence for the user, and a helper to quote their input back safely."""

from __future__ import annotations

import unicodedata

__all__ = ["CommandError", "InputError", "SentenceError", "quoted"]


class SentenceError(Exception):
    """A failure on our side, told to the user in one sentence: `message`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(ValueError):
    """Invalid user input: `message` says what is wrong and how to fix it; `field` names the input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r})"


class CommandError(InputError):
    """Invalid `/twilio` command text; `usage` is the usage line of the subcommand to show beside it."""

    def __init__(self, message: str, usage: str, field: str | None = None) -> None:
        super().__init__(message, field)
        self.usage = usage

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, usage={self.usage!r}, field={self.field!r})"


def quoted(text: str, limit: int = 40) -> str:
    """Return `text` in curly quotes for an error sentence, cut to `limit` characters.

    Control and format characters become U+FFFD so an error message never carries them into a
    chat reply, and long input is cut so one bad paste cannot flood the answer.
    """
    cleaned = "".join(
        "\N{REPLACEMENT CHARACTER}" if unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"} else ch
        for ch in text[: limit + 1]
    )
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return f"“{cleaned}”"

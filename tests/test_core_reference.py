"""The text rules every send runs in its ack (`tokenize`, `body_info`, `check_body`) are written for speed;
these properties hold them to their plain, character-by-character definitions."""

from __future__ import annotations

import bisect
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import InputError
from bot.core.rules import GSM7_BASIC, GSM7_EXTENSION, BodyInfo, body_info, check_body
from bot.core.words import FLAG, Token, tokenize

_QUOTES = {'"': '"”', "'": "'’", "“": "”\"", "‘": "’'"}  # fmt: skip


def plain_tokenize(text: str) -> list[Token]:
    """Split on str.isspace(), a character at a time; a quote groups when a matching one ends a word."""
    closers: dict[str, list[int]] = {}
    for k, ch in enumerate(text):
        if ch in "\"'”’" and (k + 1 == len(text) or text[k + 1].isspace()):
            closers.setdefault(ch, []).append(k)

    def close_of(opener: str, start: int) -> int | None:
        ends = [
            spots[k]
            for ch in _QUOTES.get(opener, "")
            if (k := bisect.bisect_left(spots := closers.get(ch, []), start)) < len(spots)
        ]
        return min(ends, default=None)

    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return tokens
        close = close_of(text[i], i + 1)
        if close is not None:
            tokens.append(Token(text[i + 1 : close], i, close + 1, True))
            i = close + 1
            continue
        j = i
        while j < n and not text[j].isspace():
            j += 1
        word = text[i:j]
        eq = word.find("=")
        if eq > 0 and FLAG.fullmatch(word[:eq]) and i + eq + 1 < n:
            close = close_of(text[i + eq + 1], i + eq + 2)
            if close is not None:
                tokens.append(Token(word[: eq + 1] + text[i + eq + 2 : close], i, close + 1, False))
                i = close + 1
                continue
        tokens.append(Token(word, i, j, False))
        i = j


def plain_body_info(text: str) -> BodyInfo:
    """Every character's width in its encoding, packed into segments one character at a time."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        encoding, single, multi = "GSM-7", 160, 153
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    else:
        encoding, single, multi = "UCS-2", 70, 67
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    total = sum(units)
    if total <= single:
        return BodyInfo(chars=len(text), encoding=encoding, segments=min(total, 1))  # type: ignore[arg-type]
    count, used = 1, 0
    for width in units:
        if used + width > multi:
            count, used = count + 1, 0
        used += width
    return BodyInfo(chars=len(text), encoding=encoding, segments=count)  # type: ignore[arg-type]


# What commands are made of, and what trips a tokenizer: every quote, Unicode spaces, flags, emoji.
_PIECES = st.sampled_from(
    [
        *"\"'“”‘’=-—–",
        " ",
        "\n",
        "\t",
        "\u00a0",
        "\u2003",
        "\x1c",
        "\x85",
        "--from",
        "--at=",
        "—body=",
        "send",
        "+15551234567",
        "don't",
        "a",
        "Zz9",
        "😀",
    ]
)


@settings(max_examples=3000)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_tokenize_splits_as_the_plain_definition(text: str) -> None:
    """Words, spans and quoting come out as a character-by-character tokenizer gives them."""
    assert tokenize(text) == plain_tokenize(text)


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_tokenize_splits_any_text_as_the_plain_definition(text: str) -> None:
    """Any Unicode text, whitespace of every kind included, tokenizes as the plain definition."""
    assert tokenize(text) == plain_tokenize(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 160,
        "a" * 161,
        "a" * 306,
        "a" * 307,
        "{" * 80,
        "a" + "{" * 80,
        "a" * 152 + "€",
        "é" * 70,
        "é" * 71,
        "😀" * 35,
        "a" * 66 + "😀",
        "a" * 67 + "😀" + "ж",
        "ж{" * 40,
    ],
)
def test_body_info_counts_as_the_plain_definition_at_the_boundaries(text: str) -> None:
    """Segment counts agree at every boundary: one segment, many, a wide character straddling one."""
    assert body_info(text) == plain_body_info(text)


_BODY_PIECES = st.sampled_from([*"aZ9 @£\n\r{}€[~]|^\\", "é", "ж", "😀", "a" * 40, "{" * 20, "😀" * 10])


@settings(max_examples=2000)
@given(st.lists(_BODY_PIECES, max_size=60).map("".join))
def test_body_info_counts_as_the_plain_definition(text: str) -> None:
    """Encoding and segments agree with packing each character's width one at a time."""
    assert body_info(text) == plain_body_info(text)


def test_check_body_refuses_exactly_the_control_characters_but_newline_return_and_tab() -> None:
    """Every code point of category Cc but \\n, \\r and \\t is refused, and nothing else in the BMP is
    (Cc has no code point beyond U+009F)."""
    for code in range(0x10000):
        ch = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates never arrive in a decoded Slack payload
        refused = unicodedata.category(ch) == "Cc" and ch not in "\n\r\t"
        if refused:
            with pytest.raises(InputError, match=f"U\\+{code:04X}"):
                check_body("hello " + ch)
        elif not ch.isspace():
            assert check_body("hello " + ch).chars == 7

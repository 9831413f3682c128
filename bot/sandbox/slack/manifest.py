"""The app's manifest: a small YAML subset (block mappings and sequences, plain/quoted scalars, flow lists).

The simulator takes the app's name, its slash commands and its bot scopes from ``manifest.yml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.sandbox.slack.records import Json

DEFAULT_MANIFEST = Path(__file__).resolve().parents[3] / "manifest.yml"


def _strip_comment(line: str) -> str:
    quote: str | None = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text: str) -> Any:
    text = text.strip()
    if text[:1] in "'\"" and text[-1:] == text[:1] and len(text) >= 2:
        inner = text[1:-1]
        return inner.replace("''", "'") if text[0] == "'" else inner.replace('\\"', '"')
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(part) for part in text[1:-1].split(",") if part.strip()]
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"null", "~", ""}:
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def parse_yaml_subset(text: str) -> Any:
    """Parse the plain YAML Slack manifests are written in (no anchors, no flow mappings)."""
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        if raw.strip().startswith("---"):
            continue
        stripped = _strip_comment(raw)
        if stripped.strip():
            lines.append((len(stripped) - len(stripped.lstrip(" ")), stripped.strip()))

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("-"):
            return sequence(i, indent)
        return mapping(i, indent)

    def value_after(i: int, indent: int, rest: str) -> tuple[Any, int]:
        if rest in {"|", ">", "|-", ">-"}:
            parts: list[str] = []
            while i < len(lines) and lines[i][0] > indent:
                parts.append(lines[i][1])
                i += 1
            return ("\n" if rest[0] == "|" else " ").join(parts), i
        if rest:
            return _scalar(rest), i
        if i < len(lines) and (
            lines[i][0] > indent or (lines[i][0] == indent and lines[i][1].startswith("- "))
        ):
            return block(i, lines[i][0])
        return None, i

    def mapping(i: int, indent: int) -> tuple[Json, int]:
        result: Json = {}
        while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
            key, _, rest = lines[i][1].partition(":")
            result[str(_scalar(key))], i = value_after(i + 1, indent, rest.strip())
        return result, i

    def sequence(i: int, indent: int) -> tuple[list[Any], int]:
        result: list[Any] = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("-"):
            rest = lines[i][1][1:].strip()
            if not rest:
                item, i = block(i + 1, lines[i + 1][0]) if i + 1 < len(lines) else (None, i + 1)
            elif re.match(r"^[\w\"'./-]+\s*:(\s|$)", rest):
                lines[i] = (indent + len(lines[i][1]) - len(rest), rest)
                item, i = mapping(i, lines[i][0])
            else:
                item, i = _scalar(rest), i + 1
            result.append(item)
        return result, i

    if not lines:
        return None
    return block(0, lines[0][0])[0]


@dataclass(frozen=True)
class ManifestInfo:
    """What the simulator takes from ``manifest.yml``: names, slash commands, bot scopes and bot events."""

    app_name: str = "Twilio"
    bot_name: str = "twilio"
    commands: tuple[Json, ...] = ({"command": "/twilio", "description": "", "usage_hint": ""},)
    scopes: frozenset[str] | None = None
    bot_events: frozenset[str] = frozenset()  # settings.event_subscriptions.bot_events
    token_rotation: bool = False


def read_manifest(path: Path | None) -> ManifestInfo:
    """Read the app's name, slash commands and bot scopes from a manifest, or defaults when absent."""
    if path is None or not path.is_file():
        return ManifestInfo()
    try:
        data = parse_yaml_subset(path.read_text(encoding="utf-8"))
    except (IndexError, ValueError):
        return ManifestInfo()
    if not isinstance(data, dict):
        return ManifestInfo()
    info = data.get("display_information") or {}
    features = data.get("features") or {}
    bot_user = features.get("bot_user") or {}
    commands = tuple(
        {
            "command": str(c.get("command", "")),
            "description": str(c.get("description") or ""),
            "usage_hint": str(c.get("usage_hint") or ""),
        }
        for c in features.get("slash_commands") or []
        if isinstance(c, dict) and c.get("command")
    )
    scopes = ((data.get("oauth_config") or {}).get("scopes") or {}).get("bot")
    settings = data.get("settings") or {}
    events = (settings.get("event_subscriptions") or {}).get("bot_events") or []
    return ManifestInfo(
        app_name=str(info.get("name") or "Twilio"),
        bot_name=str(bot_user.get("display_name") or info.get("name") or "twilio"),
        commands=commands or ManifestInfo().commands,
        scopes=frozenset(str(s) for s in scopes) if isinstance(scopes, list) else None,
        bot_events=frozenset(str(e) for e in events) if isinstance(events, list) else frozenset(),
        token_rotation=settings.get("token_rotation_enabled") is True,
    )

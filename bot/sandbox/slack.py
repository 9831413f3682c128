"""A Slack stand-in on loopback: the Web API the bot calls, and a Slack client that calls the bot.

`SlackSimulator` is a real aiohttp server (port 0) with three faces:

* the Web API under ``/api/<method>`` (``chat.postMessage``, ``views.open``, …) with Slack's error codes,
  Block Kit validation strict enough to catch bot bugs before Slack does, scope checks from the
  manifest, and fault injection (429 with ``Retry-After``, 5xx, ``ok: false``);
* a Slack *client*: :meth:`SlackSimulator.slash_command`, :meth:`~SlackSimulator.click`,
  :meth:`~SlackSimulator.submit_view` and :meth:`~SlackSimulator.close_view` build the payloads Slack
  builds, sign them with the signing secret and POST them to the bot's ``/slack/events``;
* the playground page (``GET /``), which looks like a Slack channel, gets live updates over server-sent
  events (``GET /events``) and drives the client through JSON endpoints under ``/ui/``.

It records everything (``calls``, ``deliveries``, ``problems``) so end-to-end tests can assert on what a
user of Slack would have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

Json = dict[str, Any]

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

TRIGGER_TTL = 3.0
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_MAX_USES = 5
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_BLOCKS_JSON = 13_000
MAX_VIEW_STACK = 3

STATIC_DIR = Path(__file__).with_name("static")
DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"

# Which bot scopes each method needs (any one of them), as Slack documents them.
METHOD_SCOPES: Mapping[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "users.info": ("users:read",),
    "users.list": ("users:read",),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.list": ("channels:read", "groups:read"),
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "conversations.join": ("channels:join",),
    "team.info": ("team:read",),
}


# --------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class ApiCall:
    """One Web API call (or response_url post) the simulator received, and what it answered."""

    method: str
    args: Json
    time: float
    status: int = 200
    response: Json = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether Slack would have answered ``ok: true``."""
        return bool(self.response.get("ok"))


@dataclass(frozen=True)
class SlackResponse:
    """The bot's immediate HTTP answer to a request the simulated Slack client sent.

    ``status`` is 0 when there was no HTTP answer; ``error`` then says why, in Slack's words
    (``dispatch_failed``, ``operation_timeout``, ``client_validation`` when the modal never left the
    "client" because a required field was empty).
    """

    status: int
    body: str
    headers: Mapping[str, str]
    error: str | None = None
    elapsed: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Delivery:
    """A signed request the simulator sent to the bot, with its payload decoded."""

    kind: str  # "slash_command", "block_actions", "view_submission", "view_closed"
    payload: Json
    body: bytes
    headers: Mapping[str, str]
    response: SlackResponse
    transport: str = "http"  # "socket" when it went over a Socket Mode connection (body: the envelope)


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


@dataclass
class _Fault:
    method: str
    error: str | None
    status: int
    retry_after: int | None
    times: int


@dataclass
class _Trigger:
    id: str
    issued: float
    user_id: str
    view_id: str | None = None
    used: bool = False


@dataclass
class _ResponseUrl:
    id: str
    channel_id: str
    user_id: str
    created: float
    source_ts: str | None
    source_ephemeral: bool
    uses: int = 0


@dataclass
class _OpenView:
    view: Json
    user_id: str
    seq: int
    errors: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    """A Slack ``ok: false`` answer."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


# --------------------------------------------------------------------------------------------------
# Manifest (a small YAML subset: block mappings and sequences, plain/quoted scalars, flow lists)


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
    """What the simulator takes from ``manifest.yml``: names, slash commands and bot scopes."""

    app_name: str = "Twilio"
    bot_name: str = "twilio"
    commands: tuple[Json, ...] = ({"command": "/twilio", "description": "", "usage_hint": ""},)
    scopes: frozenset[str] | None = None


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
    return ManifestInfo(
        app_name=str(info.get("name") or "Twilio"),
        bot_name=str(bot_user.get("display_name") or info.get("name") or "twilio"),
        commands=commands or ManifestInfo().commands,
        scopes=frozenset(str(s) for s in scopes) if isinstance(scopes, list) else None,
    )


# --------------------------------------------------------------------------------------------------
# Block Kit validation

_BUTTON_LIKE = {"button", "workflow_button"}
_SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
}
_INPUTS = {
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "rich_text_input",
    "file_input",
}
_PICKERS = {"datepicker", "timepicker", "datetimepicker", "checkboxes", "radio_buttons"}
_ACCESSORY = (
    _BUTTON_LIKE | _SELECTS | {"overflow", "image", "datepicker", "timepicker", "checkboxes", "radio_buttons"}
)
_ACTION_ELEMENTS = _BUTTON_LIKE | _SELECTS | _PICKERS | {"overflow", "plain_text_input", "rich_text_input"}
_INPUT_ELEMENTS = _SELECTS | _PICKERS | _INPUTS
_BLOCK_TYPES = {
    "section",
    "header",
    "context",
    "divider",
    "actions",
    "input",
    "image",
    "rich_text",
    "file",
    "video",
    "markdown",
}


class _Check:
    """Collects Slack-style validation errors: ``"<problem> [json-pointer:/blocks/0/text]"``."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, ptr: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{ptr}]")

    def string(self, value: Any, ptr: str, *, max_len: int, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(ptr, "missing required field")
            return
        if not isinstance(value, str):
            self.fail(ptr, "must be a string")
        elif required and not value:
            self.fail(ptr, "must be more than 0 characters")
        elif len(value) > max_len:
            self.fail(ptr, f"must be less than {max_len + 1} characters")

    def text(self, obj: Any, ptr: str, *, max_len: int, plain: bool = False, required: bool = True) -> None:
        if obj is None:
            if required:
                self.fail(ptr, "missing required field")
            return
        if not isinstance(obj, dict):
            self.fail(ptr, "must be a text object")
            return
        kind = obj.get("type")
        if kind not in {"plain_text", "mrkdwn"}:
            self.fail(f"{ptr}/type", "must be 'plain_text' or 'mrkdwn'")
            return
        if plain and kind != "plain_text":
            self.fail(f"{ptr}/type", "must be 'plain_text'")
        if kind == "mrkdwn" and "emoji" in obj:
            self.fail(f"{ptr}/emoji", "is only allowed on plain_text")
        self.string(obj.get("text"), f"{ptr}/text", max_len=max_len, required=True)

    def option(self, obj: Any, ptr: str, *, text_max: int = 75) -> None:
        if not isinstance(obj, dict):
            self.fail(ptr, "must be an option object")
            return
        self.text(obj.get("text"), f"{ptr}/text", max_len=text_max)
        self.string(obj.get("value"), f"{ptr}/value", max_len=150, required=True)
        self.text(obj.get("description"), f"{ptr}/description", max_len=75, plain=True, required=False)

    def options(self, value: Any, ptr: str, *, max_items: int, min_items: int = 1) -> list[Json]:
        if not isinstance(value, list):
            self.fail(ptr, "must be an array")
            return []
        if not min_items <= len(value) <= max_items:
            self.fail(ptr, f"must have between {min_items} and {max_items} items")
        for i, opt in enumerate(value):
            self.option(opt, f"{ptr}/{i}")
        return [o for o in value if isinstance(o, dict)]

    def confirm(self, obj: Any, ptr: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.fail(ptr, "must be a confirm object")
            return
        self.text(obj.get("title"), f"{ptr}/title", max_len=100, plain=True)
        self.text(obj.get("text"), f"{ptr}/text", max_len=300)
        self.text(obj.get("confirm"), f"{ptr}/confirm", max_len=30, plain=True)
        self.text(obj.get("deny"), f"{ptr}/deny", max_len=30, plain=True)
        if obj.get("style") not in {None, "primary", "danger"}:
            self.fail(f"{ptr}/style", "must be 'primary' or 'danger'")

    def element(self, el: Any, ptr: str, allowed: Collection[str], action_ids: set[str] | None) -> None:
        if not isinstance(el, dict):
            self.fail(ptr, "must be an element object")
            return
        kind = el.get("type")
        if kind not in allowed:
            self.fail(f"{ptr}/type", f"element type '{kind}' is not allowed here")
            return
        if kind == "image":
            self.string(
                el.get("image_url"), f"{ptr}/image_url", max_len=3000, required="slack_file" not in el
            )
            self.string(el.get("alt_text"), f"{ptr}/alt_text", max_len=2000, required=True)
            return
        action_id = el.get("action_id")
        self.string(action_id, f"{ptr}/action_id", max_len=255)
        if isinstance(action_id, str) and action_ids is not None:
            if action_id in action_ids:
                self.fail(f"{ptr}/action_id", f"duplicate action_id '{action_id}'")
            action_ids.add(action_id)
        self.confirm(el.get("confirm"), f"{ptr}/confirm")
        if "placeholder" in el:
            self.text(el.get("placeholder"), f"{ptr}/placeholder", max_len=150, plain=True)
        if kind in _BUTTON_LIKE:
            self.text(el.get("text"), f"{ptr}/text", max_len=75, plain=True)
            self.string(el.get("value"), f"{ptr}/value", max_len=2000)
            self.string(el.get("url"), f"{ptr}/url", max_len=3000)
            if el.get("style") not in {None, "primary", "danger"}:
                self.fail(f"{ptr}/style", "must be 'primary' or 'danger'")
        elif kind in {"static_select", "multi_static_select"}:
            if "option_groups" in el:
                groups = el["option_groups"] if isinstance(el["option_groups"], list) else []
                opts = [
                    o
                    for gi, g in enumerate(groups)
                    for o in self.options(
                        g.get("options"), f"{ptr}/option_groups/{gi}/options", max_items=100
                    )
                ]
            else:
                opts = self.options(el.get("options"), f"{ptr}/options", max_items=100)
            values = {o.get("value") for o in opts}
            initial = [el["initial_option"]] if "initial_option" in el else el.get("initial_options", [])
            for i, chosen in enumerate(initial if isinstance(initial, list) else []):
                if not isinstance(chosen, dict) or chosen.get("value") not in values:
                    self.fail(f"{ptr}/initial_option", f"initial option {i} must be one of the options")
        elif kind == "overflow":
            self.options(el.get("options"), f"{ptr}/options", max_items=5, min_items=1)
        elif kind in {"checkboxes", "radio_buttons"}:
            self.options(el.get("options"), f"{ptr}/options", max_items=10)
        elif kind == "plain_text_input":
            lo, hi = el.get("min_length"), el.get("max_length")
            for name, value in (("min_length", lo), ("max_length", hi)):
                if value is not None and (not isinstance(value, int) or not 0 <= value <= 3000):
                    self.fail(f"{ptr}/{name}", "must be an integer between 0 and 3000")
            if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                self.fail(f"{ptr}/min_length", "must not be more than max_length")
            self.string(el.get("initial_value"), f"{ptr}/initial_value", max_len=3000)
        elif kind == "datepicker" and el.get("initial_date") is not None:
            try:
                date.fromisoformat(str(el["initial_date"]))
            except ValueError:
                self.fail(f"{ptr}/initial_date", "must be a date as YYYY-MM-DD")
        elif kind == "timepicker" and el.get("initial_time") is not None:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(el["initial_time"])):
                self.fail(f"{ptr}/initial_time", "must be a time as HH:mm")
        elif kind == "datetimepicker" and el.get("initial_date_time") is not None:
            stamp = el["initial_date_time"]
            if not isinstance(stamp, int) or isinstance(stamp, bool):
                self.fail(f"{ptr}/initial_date_time", "must be an integer of unix seconds")

    def block(self, block: Any, ptr: str, *, surface: str, block_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.fail(ptr, "must be a block object")
            return
        kind = block.get("type")
        if kind not in _BLOCK_TYPES or (kind == "file" and surface != "message"):
            self.fail(f"{ptr}/type", f"unknown block type '{kind}'")
            return
        block_id = block.get("block_id")
        self.string(block_id, f"{ptr}/block_id", max_len=255)
        if isinstance(block_id, str):
            if block_id in block_ids:
                self.fail(f"{ptr}/block_id", f"duplicate block_id '{block_id}'")
            block_ids.add(block_id)
        if kind == "section":
            if block.get("text") is None and block.get("fields") is None:
                self.fail(ptr, "must provide either text or fields")
            self.text(block.get("text"), f"{ptr}/text", max_len=3000, required=False)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    self.fail(f"{ptr}/fields", "must be an array of 1 to 10 text objects")
                for i, f in enumerate(fields if isinstance(fields, list) else []):
                    self.text(f, f"{ptr}/fields/{i}", max_len=2000)
            if block.get("accessory") is not None:
                self.element(block["accessory"], f"{ptr}/accessory", _ACCESSORY, set())
        elif kind == "header":
            self.text(block.get("text"), f"{ptr}/text", max_len=150, plain=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                self.fail(f"{ptr}/elements", "must be an array of 1 to 10 elements")
                return
            for i, el in enumerate(elements):
                if isinstance(el, dict) and el.get("type") == "image":
                    self.element(el, f"{ptr}/elements/{i}", {"image"}, None)
                else:
                    self.text(el, f"{ptr}/elements/{i}", max_len=3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                self.fail(f"{ptr}/elements", "must be an array of 1 to 25 elements")
                return
            seen: set[str] = set()
            for i, el in enumerate(elements):
                self.element(el, f"{ptr}/elements/{i}", _ACTION_ELEMENTS, seen)
        elif kind == "input":
            self.text(block.get("label"), f"{ptr}/label", max_len=2000, plain=True)
            self.text(block.get("hint"), f"{ptr}/hint", max_len=2000, plain=True, required=False)
            if block.get("element") is None:
                self.fail(f"{ptr}/element", "missing required field")
            else:
                self.element(block["element"], f"{ptr}/element", _INPUT_ELEMENTS, set())
        elif kind == "image":
            self.string(
                block.get("image_url"), f"{ptr}/image_url", max_len=3000, required="slack_file" not in block
            )
            self.string(block.get("alt_text"), f"{ptr}/alt_text", max_len=2000, required=True)
            self.text(block.get("title"), f"{ptr}/title", max_len=2000, plain=True, required=False)
        elif kind == "markdown":
            self.string(block.get("text"), f"{ptr}/text", max_len=12_000, required=True)
        elif kind == "rich_text" and not isinstance(block.get("elements"), list):
            self.fail(f"{ptr}/elements", "must be an array")

    def blocks(self, blocks: Any, ptr: str, *, surface: str, max_blocks: int) -> None:
        if not isinstance(blocks, list):
            self.fail(ptr, "must be an array")
            return
        if len(blocks) > max_blocks:
            self.fail(ptr, f"no more than {max_blocks} items allowed")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{ptr}/{i}", surface=surface, block_ids=seen)


def validate_blocks(blocks: Any, *, surface: str = "message") -> list[str]:
    """Slack-style errors for a list of blocks (empty when Slack would accept them)."""
    check = _Check()
    limit = MAX_MESSAGE_BLOCKS if surface == "message" else MAX_VIEW_BLOCKS
    check.blocks(blocks, "/blocks", surface=surface, max_blocks=limit)
    return check.errors


def validate_view(view: Any) -> list[str]:
    """Slack-style errors for a modal view (empty when ``views.open`` would accept it)."""
    check = _Check()
    if not isinstance(view, dict):
        check.fail("/view", "must be a view object")
        return check.errors
    if view.get("type") not in {"modal", "home"}:
        check.fail("/view/type", "must be 'modal' or 'home'")
    if view.get("type") == "modal":
        check.text(view.get("title"), "/view/title", max_len=24, plain=True)
    check.text(view.get("submit"), "/view/submit", max_len=24, plain=True, required=False)
    check.text(view.get("close"), "/view/close", max_len=24, plain=True, required=False)
    check.blocks(view.get("blocks"), "/view/blocks", surface="modal", max_blocks=MAX_VIEW_BLOCKS)
    raw_blocks = view.get("blocks")
    blocks: list[Any] = raw_blocks if isinstance(raw_blocks, list) else []
    if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks) and not view.get("submit"):
        check.fail("/view/submit", "submit is required when an input block is present")
    check.string(view.get("callback_id"), "/view/callback_id", max_len=255)
    check.string(view.get("private_metadata"), "/view/private_metadata", max_len=3000)
    check.string(view.get("external_id"), "/view/external_id", max_len=255)
    return check.errors


# --------------------------------------------------------------------------------------------------
# Helpers


def escape_mrkdwn(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` the way Slack does in text it hands to apps."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json_arg(value: Any, name: str) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            raise _ApiError(f"invalid_{name}_format" if name == "blocks" else "invalid_arguments") from None
    return value


def _iter_elements(blocks: Iterable[Json]) -> Iterable[tuple[Json, Json]]:
    """Every interactive element with the block holding it."""
    for block in blocks:
        if block.get("type") == "actions":
            for el in block.get("elements") or []:
                yield block, el
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]
        elif block.get("type") == "input" and isinstance(block.get("element"), dict):
            yield block, block["element"]


def _empty_state(element: Json) -> Json:
    kind = element.get("type", "")
    state: Json = {"type": kind}
    if kind in {"static_select", "external_select", "overflow", "radio_buttons"}:
        state["selected_option"] = element.get("initial_option")
    elif (kind.startswith("multi_") and kind.endswith("_select")) or kind == "checkboxes":
        state["selected_options"] = element.get("initial_options", [])
    elif kind == "users_select":
        state["selected_user"] = element.get("initial_user")
    elif kind in {"conversations_select", "channels_select"}:
        key = "selected_conversation" if kind == "conversations_select" else "selected_channel"
        state[key] = element.get(
            "initial_conversation" if kind == "conversations_select" else "initial_channel"
        )
    elif kind == "datepicker":
        state["selected_date"] = element.get("initial_date")
    elif kind == "timepicker":
        state["selected_time"] = element.get("initial_time")
    elif kind == "datetimepicker":
        state["selected_date_time"] = element.get("initial_date_time")
    else:
        state["value"] = element.get("initial_value")
    return state


def _is_empty(state: Json) -> bool:
    for key, value in state.items():
        if key != "type":
            return value in (None, "", [])
    return True


def _handle(name: str) -> str:
    """A Slack user name (handle) from a display name: ``Twilio Bridge`` → ``twilio_bridge``."""
    return re.sub(r"[^a-z0-9._-]+", "_", name.lower()).strip("_") or "bot"


class SlackSimulator:
    """Plays Slack for the bot: Web API, signed requests to ``/slack/events``, and the playground page.

    ``clock`` drives message ``ts``, trigger_id expiry (3 s) and response_url expiry (30 min); request
    signatures always use wall time, as the bot checks their age against its own clock.
    ``command_hints`` (subcommand → usage line, e.g. ``bot.core.commands.USAGE``) and
    ``command_descriptions`` (subcommand → one sentence) feed the page's completion;
    ``manifest_path`` gives the slash commands' usage hints, the app name and the bot scopes, which are
    then enforced (``missing_scope``) unless ``scopes`` overrides them.
    ``ack_timeout`` is how long the client waits for the bot's HTTP answer (Slack: 3 s).

    Socket Mode: with ``app_token`` (``xapp-…``) the simulator answers ``apps.connections.open`` with a
    ``ws://`` URL on itself and serves that WebSocket (``hello``, then envelopes; acks are recorded in
    ``socket_acks``). With ``socket_mode=True`` (or ``socket=True`` per call) slash commands and
    interactions go over the newest connection instead of HTTP; with no connection they fail with
    ``dispatch_failed``, as in Slack.
    """

    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str,
        team_id: str = TEAM_ID,
        team_domain: str = TEAM_DOMAIN,
        bot_events_url: str | None = None,
        clock: Callable[[], float] = time.time,
        command_hints: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        command_descriptions: Mapping[str, str] | None = None,
        manifest_path: Path | str | None = DEFAULT_MANIFEST,
        scopes: Collection[str] | None = None,
        ack_timeout: float = 3.0,
        app_token: str | None = None,
        socket_mode: bool = False,
    ) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.app_token = app_token
        self.socket_mode = socket_mode
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_events_url = bot_events_url
        self.ack_timeout = ack_timeout
        self._clock = clock
        self._verifier = SignatureVerifier(signing_secret)
        hints = command_hints.items() if isinstance(command_hints, Mapping) else command_hints
        self.command_hints: list[tuple[str, str]] = [(str(a), str(b)) for a, b in hints]
        self.command_descriptions: dict[str, str] = dict(command_descriptions or {})
        self.manifest = read_manifest(Path(manifest_path) if manifest_path is not None else None)
        self.scopes: frozenset[str] | None = frozenset(scopes) if scopes is not None else self.manifest.scopes

        self.users: dict[str, _User] = {
            u.id: u
            for u in (
                _User(ADMIN_ID, "ada", "Ada Admin", is_admin=True),
                _User(MEMBER_ID, "max", "Max Member"),
                _User(BOT_USER_ID, _handle(self.manifest.bot_name), self.manifest.app_name, is_bot=True),
            )
        }
        self.channels: dict[str, _Channel] = {
            c.id: c
            for c in (
                _Channel(GENERAL_ID, "general", False, [ADMIN_ID, MEMBER_ID, BOT_USER_ID], "Company-wide"),
                _Channel(OPS_ID, "ops", False, [ADMIN_ID, MEMBER_ID, BOT_USER_ID], "Where SMS gets sent"),
                _Channel(PRIVATE_ID, "private-team", True, [ADMIN_ID, MEMBER_ID], "The bot is not in here"),
            )
        }

        self.calls: list[ApiCall] = []
        self.deliveries: list[Delivery] = []
        self.problems: list[str] = []
        self.ephemerals: list[Json] = []
        self._messages: dict[str, list[Json]] = {c: [] for c in self.channels}
        self._echoes: list[Json] = []
        self._faults: list[_Fault] = []
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._views: dict[str, _OpenView] = {}
        self._stacks: dict[str, list[str]] = {}
        self._seq = itertools.count(1)
        self._last_micros = 0
        self._subscribers: set[asyncio.Queue[tuple[str, Json] | None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""
        # Socket Mode
        self.socket_acks: list[Json] = []
        self.socket_connections = 0  # how many WebSockets were ever opened
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_tickets: set[str] = set()
        self._pending_acks: dict[str, asyncio.Future[Json]] = {}

        self._methods: dict[str, Callable[[Json], Json]] = {
            "api.test": lambda args: {"ok": True, "args": args},
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "team.info": self._team_info,
            "apps.connections.open": lambda args: {"ok": False, "error": "invalid_auth"},  # see _handle_api
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; returns the base URL (the Web API is at ``f"{url}/api/"``)."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{id}", self._handle_response_url)
        app.router.add_get("/socket/{ticket}", self._handle_socket)
        app.router.add_get("/", self._handle_index)
        app.router.add_get("/events", self._handle_events)
        app.router.add_get("/ui/state", self._handle_ui_state)
        app.router.add_post("/ui/command", self._handle_ui_command)
        app.router.add_post("/ui/click", self._handle_ui_click)
        app.router.add_post("/ui/submit", self._handle_ui_submit)
        app.router.add_post("/ui/close", self._handle_ui_close)
        if STATIC_DIR.is_dir():
            app.router.add_static("/static/", STATIC_DIR)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}"
        self._session = aiohttp.ClientSession()
        return self.url

    async def stop(self) -> None:
        """Close live event streams, the outgoing HTTP session and the server."""
        for queue in list(self._subscribers):
            queue.put_nowait(None)
        for ws in list(self._sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def set_bot_url(self, url: str) -> None:
        """Where signed requests go: the bot's ``/slack/events`` URL."""
        self.bot_events_url = url

    @property
    def api_url(self) -> str:
        """The Web API base URL to give slack_sdk as ``base_url``."""
        return f"{self.url}/api/"

    @property
    def socket_connected(self) -> bool:
        """Whether a Socket Mode client is connected now."""
        return any(not ws.closed for ws in self._sockets)

    # ------------------------------------------------------------------ test helpers

    def messages(self, channel: str) -> list[Json]:
        """Current messages of a channel (after updates and deletes), replies included, oldest first."""
        return copy.deepcopy(self._messages[self._channel(channel).id])

    def message(self, channel: str, ts: str) -> Json:
        """One stored message; KeyError when there is none."""
        for msg in self._messages[self._channel(channel).id]:
            if msg["ts"] == ts:
                return copy.deepcopy(msg)
        raise KeyError(ts)

    def calls_to(self, method: str) -> list[ApiCall]:
        """The recorded calls of one Web API method (``"response_url"`` for response_url posts)."""
        return [c for c in self.calls if c.method == method]

    @property
    def views(self) -> dict[str, Json]:
        """Open views by id (modal stacks of every user)."""
        return {vid: copy.deepcopy(ov.view) for vid, ov in self._views.items()}

    @property
    def view_errors(self) -> dict[str, dict[str, str]]:
        """Field errors shown in open views (from ``response_action: errors``), by view id."""
        return {vid: dict(ov.errors) for vid, ov in self._views.items() if ov.errors}

    def inject(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``"*"``: any) fail without being applied.

        ``status=429`` answers ``ratelimited`` with a ``Retry-After`` header (``retry_after`` or 1);
        5xx answers ``internal_error``/``service_unavailable``; with status 200, ``error`` is the
        ``ok: false`` error code (``not_in_channel``, ``channel_not_found``, …).
        """
        self._faults.append(_Fault(method, error, status, retry_after, times))

    def clear_faults(self) -> None:
        """Forget every injected fault not yet used."""
        self._faults.clear()

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        """The two headers Slack signs a request with."""
        signature = self._verifier.generate_signature(timestamp=str(timestamp), body=body)
        return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature or ""}

    def post_user_message(self, text: str, *, user_id: str = ADMIN_ID, channel_id: str = GENERAL_ID) -> Json:
        """A plain message typed by a person (the bot gets no event for it)."""
        message: Json = {
            "type": "message",
            "user": self._user(user_id).id,
            "text": escape_mrkdwn(text),
            "ts": self._next_ts(),
            "team": self.team_id,
        }
        self._store_message(self._channel(channel_id).id, message)
        return copy.deepcopy(message)

    # ------------------------------------------------------------------ state

    def _user(self, user_id: str) -> _User:
        try:
            return self.users[user_id]
        except KeyError:
            raise LookupError(f"no user {user_id!r}") from None

    def _channel(self, ref: str) -> _Channel:
        if ref in self.channels:
            return self.channels[ref]
        name = ref.lstrip("#")
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise LookupError(f"no channel {ref!r}")

    def _next_ts(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _short_id(self, prefix: str, length: int = 10) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        return prefix + "".join(secrets.choice(alphabet) for _ in range(length))

    def _issue_trigger(self, user_id: str, view_id: str | None = None) -> str:
        trigger = _Trigger(
            id=f"{next(self._seq)}{secrets.randbelow(10**6):06d}.{self.team_id[1:]}.{secrets.token_hex(16)}",
            issued=self._clock(),
            user_id=user_id,
            view_id=view_id,
        )
        self._triggers[trigger.id] = trigger
        return trigger.id

    def _issue_response_url(
        self, channel_id: str, user_id: str, *, source_ts: str | None = None, ephemeral: bool = False
    ) -> str:
        rid = f"{self.team_id}-{next(self._seq)}-{secrets.token_hex(12)}"
        self._response_urls[rid] = _ResponseUrl(
            rid, channel_id, user_id, self._clock(), source_ts, source_ephemeral=ephemeral
        )
        return f"{self.url}/response/{rid}"

    def _broadcast(self, kind: str, data: Json) -> None:
        for queue in self._subscribers:
            queue.put_nowait((kind, data))

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        self._broadcast("problem", {"text": text})

    def _bot_message(
        self, text: str, blocks: list[Json] | None, thread_ts: str | None = None, ts: str | None = None
    ) -> Json:
        message: Json = {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": API_APP_ID,
            "team": self.team_id,
            "bot_profile": {"id": BOT_ID, "app_id": API_APP_ID, "name": self.manifest.app_name},
            "ts": ts or self._next_ts(),
        }
        if blocks:
            message["blocks"] = blocks
        if thread_ts:
            message["thread_ts"] = thread_ts
        return message

    def _store_message(self, channel_id: str, message: Json) -> None:
        stored = self._messages[channel_id]
        stored.append(message)
        if len(stored) > 1 and float(stored[-2]["ts"]) > float(message["ts"]):
            stored.sort(key=lambda m: float(m["ts"]))
        parent_ts = message.get("thread_ts")
        if parent_ts and parent_ts != message["ts"]:
            for parent in self._messages[channel_id]:
                if parent["ts"] == parent_ts:
                    parent["thread_ts"] = parent_ts
                    parent["reply_count"] = parent.get("reply_count", 0) + 1
                    parent["latest_reply"] = message["ts"]
                    self._broadcast("message_changed", {"channel": channel_id, "message": parent})
        self._broadcast("message", {"channel": channel_id, "message": message})

    def _find_message(self, channel_id: str, ts: str) -> Json:
        for msg in self._messages[channel_id]:
            if msg["ts"] == ts:
                return msg
        raise _ApiError("message_not_found")

    def _add_ephemeral(
        self,
        channel_id: str,
        user_id: str,
        text: str,
        blocks: list[Json] | None,
        *,
        source: str,
        ts: str | None = None,
        **extra: Any,
    ) -> Json:
        eph: Json = {
            "type": "message",
            "subtype": "ephemeral",
            "channel": channel_id,
            "user": user_id,
            "text": text,
            "ts": ts or self._next_ts(),
            "source": source,
            **extra,
        }
        if blocks:
            eph["blocks"] = blocks
        self.ephemerals.append(eph)
        self.ephemerals.sort(key=lambda e: float(e["ts"]))
        self._broadcast("ephemeral", {"ephemeral": eph})
        return eph

    def _slack_says(self, channel_id: str, user_id: str, text: str, ts: str | None = None) -> None:
        """A notice from Slack itself (Slackbot), as Slack shows a failed command."""
        self._add_ephemeral(channel_id, user_id, text, None, source="slack", ts=ts)

    def _prepare_blocks(self, raw: Any, *, surface: str = "message") -> list[Json] | None:
        """Decode, validate and give ids to blocks the way Slack stores them."""
        if raw is None or raw == "":
            return None
        blocks = _json_arg(raw, "blocks")
        errors = validate_blocks(blocks, surface=surface)
        if errors:
            raise _ApiError("invalid_blocks", errors=errors, response_metadata={"messages": errors})
        if surface == "message" and len(json.dumps(blocks, ensure_ascii=False)) > MAX_BLOCKS_JSON:
            raise _ApiError("msg_blocks_too_long")
        blocks = copy.deepcopy(blocks)
        for block in blocks:
            block.setdefault("block_id", secrets.token_urlsafe(4)[:5])
        for _block, el in _iter_elements(blocks):
            if el.get("type") != "image":
                el.setdefault("action_id", secrets.token_urlsafe(4)[:5])
        return list(blocks)

    def state(self, *, with_messages: bool = True) -> Json:
        """Everything the page needs to draw itself."""
        views = [
            {"view": ov.view, "user_id": ov.user_id, "seq": ov.seq, "errors": ov.errors}
            for ov in self._views.values()
        ]
        state: Json = {
            "team": {"id": self.team_id, "domain": self.team_domain},
            "app": {"name": self.manifest.app_name, "bot_user_id": BOT_USER_ID, "bot_id": BOT_ID},
            "users": [u.to_slack(self.team_id) for u in self.users.values()],
            "channels": [c.to_slack() for c in self.channels.values()],
            "commands": list(self.manifest.commands),
            "subcommands": [
                {"name": n, "usage": u, "description": self.command_descriptions.get(n, "")}
                for n, u in self.command_hints
            ],
            "bot_url": self.bot_events_url,
            "views": views,
            "problems": self.problems[-20:],
            "calls": [self._call_summary(c) for c in self.calls[-50:]],
        }
        if with_messages:
            state["messages"] = self._messages
            state["ephemerals"] = self.ephemerals
            state["echoes"] = self._echoes
        return state

    # ------------------------------------------------------------------ Web API

    async def _read_args(self, request: web.Request) -> Json:
        args: Json = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _ApiError("invalid_json") from None
                if isinstance(body, dict):
                    args.update(body)
            else:
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        for name in ("blocks", "view", "attachments"):
            if isinstance(args.get(name), str) and args[name]:
                with contextlib.suppress(ValueError):
                    args[name] = json.loads(args[name])
        return args

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method in {method, "*"}:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        status, headers = 200, dict[str, str]()
        try:
            args = await self._read_args(request)
        except _ApiError as exc:
            args, body = {}, {"ok": False, "error": exc.error}
        else:
            auth = request.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else args.pop("token", None)
            args.pop("token", None)
            fault = self._take_fault(method)
            if fault is not None:
                status = fault.status
                default = {429: "ratelimited", 503: "service_unavailable"}.get(status, "internal_error")
                body = {"ok": False, "error": fault.error or (default if status != 200 else "fatal_error")}
                if status == 429 or fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after if fault.retry_after is not None else 1)
            elif method not in self._methods:
                body = {"ok": False, "error": "unknown_method"}
            elif not token:
                body = {"ok": False, "error": "not_authed"}
            elif method == "apps.connections.open":
                body = self._apps_connections_open(token)
            elif token != self.bot_token:
                body = {"ok": False, "error": "invalid_auth"}
            elif (
                self.scopes is not None
                and METHOD_SCOPES.get(method)
                and not (set(METHOD_SCOPES[method]) & self.scopes)
            ):
                body = {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": ",".join(METHOD_SCOPES[method]),
                    "provided": ",".join(sorted(self.scopes)),
                }
            else:
                try:
                    body = self._methods[method](args)
                except _ApiError as exc:
                    body = {"ok": False, "error": exc.error, **exc.extra}
        call = ApiCall(method, args, self._clock(), status, copy.deepcopy(body))
        self.calls.append(call)
        self._broadcast("call", self._call_summary(call))
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    def _call_summary(call: ApiCall) -> Json:
        return {
            "method": call.method,
            "ok": call.ok,
            "error": call.response.get("error"),
            "status": call.status,
            "time": call.time,
        }

    def _auth_test(self, args: Json) -> Json:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Playground",
            "user": _handle(self.manifest.bot_name),
            "team_id": self.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, token: str) -> Json:
        if token == self.bot_token:
            return {"ok": False, "error": "not_allowed_token_type"}
        if not self.app_token or token != self.app_token:
            return {"ok": False, "error": "invalid_auth"}
        ticket = secrets.token_urlsafe(12)
        self._socket_tickets.add(ticket)
        return {"ok": True, "url": f"{self.url.replace('http://', 'ws://', 1)}/socket/{ticket}"}

    def _writable_channel(self, args: Json) -> _Channel:
        ref = args.get("channel")
        if not ref:
            raise _ApiError("channel_not_found")
        try:
            channel = self._channel(str(ref))
        except LookupError:
            raise _ApiError("channel_not_found") from None
        if channel.is_private and not channel.bot_member:
            raise _ApiError("not_in_channel")
        return channel

    def _message_content(self, args: Json, *, required: bool = True) -> tuple[str, list[Json] | None]:
        text = args.get("text")
        blocks = self._prepare_blocks(args.get("blocks"))
        if required and not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        if text is not None and not isinstance(text, str):
            raise _ApiError("invalid_arguments")
        return (text or "")[:40_000], blocks

    def _chat_post_message(self, args: Json) -> Json:
        channel = self._writable_channel(args)
        text, blocks = self._message_content(args)
        thread_ts = args.get("thread_ts") or None
        message = self._bot_message(text, blocks, thread_ts=str(thread_ts) if thread_ts else None)
        self._store_message(channel.id, message)
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": message}

    def _chat_update(self, args: Json) -> Json:
        channel = self._writable_channel(args)
        message = self._find_message(channel.id, str(args.get("ts", "")))
        if message.get("bot_id") != BOT_ID:
            raise _ApiError("cant_update_message")
        text, blocks = self._message_content(args, required=False)
        if "text" in args:
            message["text"] = text
        if "blocks" in args:
            if blocks:
                message["blocks"] = blocks
            else:
                message.pop("blocks", None)
        if not message.get("text") and not message.get("blocks"):
            raise _ApiError("no_text")
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        self._broadcast("message_changed", {"channel": channel.id, "message": message})
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": message,
        }

    def _chat_delete(self, args: Json) -> Json:
        channel = self._writable_channel(args)
        message = self._find_message(channel.id, str(args.get("ts", "")))
        if message.get("bot_id") != BOT_ID:
            raise _ApiError("cant_delete_message")
        self._messages[channel.id].remove(message)
        self._broadcast("message_deleted", {"channel": channel.id, "ts": message["ts"]})
        return {"ok": True, "channel": channel.id, "ts": message["ts"]}

    def _chat_post_ephemeral(self, args: Json) -> Json:
        channel = self._writable_channel(args)
        user_id = str(args.get("user", ""))
        if user_id not in self.users:
            raise _ApiError("user_not_found")
        if user_id not in channel.members:
            raise _ApiError("user_not_in_channel")
        text, blocks = self._message_content(args)
        thread_ts = args.get("thread_ts")
        extra = {"thread_ts": str(thread_ts)} if thread_ts else {}
        eph = self._add_ephemeral(channel.id, user_id, text, blocks, source="chat.postEphemeral", **extra)
        return {"ok": True, "message_ts": eph["ts"]}

    def _chat_get_permalink(self, args: Json) -> Json:
        channel = self._writable_channel(args)
        message = self._find_message(channel.id, str(args.get("message_ts", "")))
        ts = message["ts"].replace(".", "")
        return {
            "ok": True,
            "channel": channel.id,
            "permalink": f"https://{self.team_domain}.slack.com/archives/{channel.id}/p{ts}",
        }

    def _users_info(self, args: Json) -> Json:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            raise _ApiError("user_not_found")
        return {"ok": True, "user": user.to_slack(self.team_id)}

    def _users_list(self, args: Json) -> Json:
        return {
            "ok": True,
            "members": [u.to_slack(self.team_id) for u in self.users.values()],
            "response_metadata": {"next_cursor": ""},
        }

    def _visible_channel(self, args: Json) -> _Channel:
        try:
            channel = self._channel(str(args.get("channel", "")))
        except LookupError:
            raise _ApiError("channel_not_found") from None
        if channel.is_private and not channel.bot_member:
            raise _ApiError("channel_not_found")
        return channel

    def _conversations_info(self, args: Json) -> Json:
        return {"ok": True, "channel": self._visible_channel(args).to_slack()}

    def _conversations_list(self, args: Json) -> Json:
        types = str(args.get("types") or "public_channel").split(",")
        found = [
            c.to_slack()
            for c in self.channels.values()
            if ("private_channel" in types and c.is_private and c.bot_member)
            or ("public_channel" in types and not c.is_private)
        ]
        return {"ok": True, "channels": found, "response_metadata": {"next_cursor": ""}}

    def _conversations_history(self, args: Json) -> Json:
        channel = self._visible_channel(args)
        top = [m for m in self._messages[channel.id] if m.get("thread_ts", m["ts"]) == m["ts"]]
        try:
            limit = int(args.get("limit") or 100)
        except ValueError:
            raise _ApiError("invalid_limit") from None
        return {"ok": True, "messages": list(reversed(top))[:limit], "has_more": len(top) > limit}

    def _conversations_replies(self, args: Json) -> Json:
        channel = self._visible_channel(args)
        ts = str(args.get("ts", ""))
        self._find_message(channel.id, ts)
        thread = [m for m in self._messages[channel.id] if m["ts"] == ts or m.get("thread_ts") == ts]
        return {"ok": True, "messages": thread, "has_more": False}

    def _team_info(self, args: Json) -> Json:
        return {"ok": True, "team": {"id": self.team_id, "name": "Playground", "domain": self.team_domain}}

    # ------------------------------------------------------------------ views

    def _use_trigger(self, trigger_id: Any) -> _Trigger:
        if not trigger_id:
            raise _ApiError("invalid_arguments")
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if trigger.used or self._clock() - trigger.issued > TRIGGER_TTL:
            raise _ApiError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _checked_view(self, raw: Any) -> Json:
        view = _json_arg(raw, "view")
        errors = validate_view(view)
        if errors:
            raise _ApiError("invalid_arguments", errors=errors, response_metadata={"messages": errors})
        assert isinstance(view, dict)
        external_id = view.get("external_id")
        if external_id and any(ov.view.get("external_id") == external_id for ov in self._views.values()):
            raise _ApiError("duplicate_external_id")
        return view

    def _build_view(self, spec: Json, *, view_id: str, root_id: str, previous_id: str | None) -> Json:
        blocks = self._prepare_blocks(spec.get("blocks"), surface="modal") or []
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": spec.get("type", "modal"),
            "blocks": blocks,
            "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(self._clock())}.{secrets.token_hex(4)}",
            "title": spec.get("title"),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "close": spec.get("close"),
            "submit": spec.get("submit"),
            "previous_view_id": previous_id,
            "root_view_id": root_id,
            "app_id": API_APP_ID,
            "external_id": spec.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }

    def _open_stack(self, spec: Json, user_id: str, *, push: bool) -> Json:
        stack = self._stacks.setdefault(user_id, [])
        if push:
            if not stack:
                raise _ApiError("not_found")
            if len(stack) >= MAX_VIEW_STACK:
                raise _ApiError("push_limit_reached")
        else:
            self._close_views(user_id, list(stack))
            stack = self._stacks.setdefault(user_id, [])
        view_id = self._short_id("V")
        root = stack[0] if stack else view_id
        view = self._build_view(spec, view_id=view_id, root_id=root, previous_id=stack[-1] if stack else None)
        self._views[view_id] = _OpenView(view, user_id, next(self._seq))
        stack.append(view_id)
        self._broadcast_view(view_id, "view_opened")
        return view

    def _broadcast_view(self, view_id: str, kind: str) -> None:
        ov = self._views[view_id]
        self._broadcast(kind, {"view": ov.view, "user_id": ov.user_id, "seq": ov.seq, "errors": ov.errors})

    def _close_views(self, user_id: str, view_ids: Iterable[str]) -> None:
        stack = self._stacks.get(user_id, [])
        for view_id in view_ids:
            if view_id in stack:
                stack.remove(view_id)
            if self._views.pop(view_id, None) is not None:
                self._broadcast("view_closed", {"view_id": view_id, "user_id": user_id})
        if not stack:
            self._stacks.pop(user_id, None)

    def _views_open(self, args: Json) -> Json:
        trigger = self._use_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        view = self._open_stack(self._checked_view(args.get("view")), trigger.user_id, push=False)
        return {"ok": True, "view": view}

    def _views_push(self, args: Json) -> Json:
        trigger = self._use_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        view = self._open_stack(self._checked_view(args.get("view")), trigger.user_id, push=True)
        return {"ok": True, "view": view}

    def _replace_view(self, ov: _OpenView, spec: Json) -> Json:
        old = ov.view
        ov.view = self._build_view(
            spec, view_id=old["id"], root_id=old["root_view_id"], previous_id=old["previous_view_id"]
        )
        ov.errors = {}
        self._broadcast_view(old["id"], "view_updated")
        return ov.view

    def _views_update(self, args: Json) -> Json:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise _ApiError("invalid_arguments")
        ov = next(
            (
                o
                for vid, o in self._views.items()
                if (view_id and vid == view_id) or (external_id and o.view.get("external_id") == external_id)
            ),
            None,
        )
        if ov is None:
            raise _ApiError("not_found")
        if args.get("hash") and args["hash"] != ov.view["hash"]:
            raise _ApiError("hash_conflict")
        spec = _json_arg(args.get("view"), "view")
        errors = validate_view(spec)
        if errors:
            raise _ApiError("invalid_arguments", errors=errors, response_metadata={"messages": errors})
        return {"ok": True, "view": self._replace_view(ov, spec)}

    # ------------------------------------------------------------------ response_url

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        args: Json = dict(body) if isinstance(body, dict) else {}
        status, answer = 200, Json(ok=True)
        record = self._response_urls.get(rid)
        try:
            if record is None:
                status, answer = 404, {"ok": False, "error": "no_service"}
            elif self._clock() - record.created > RESPONSE_URL_TTL:
                status, answer = 404, {"ok": False, "error": "expired_url"}
            elif record.uses >= RESPONSE_URL_MAX_USES:
                status, answer = 404, {"ok": False, "error": "used_url"}
            elif not isinstance(body, dict):
                status, answer = 400, {"ok": False, "error": "invalid_payload"}
            else:
                record.uses += 1
                self._apply_response(record, args)
        except _ApiError as exc:
            status, answer = 400, {"ok": False, "error": exc.error, **exc.extra}
        call = ApiCall("response_url", {**args, "url_id": rid}, self._clock(), status, answer)
        self.calls.append(call)
        self._broadcast("call", self._call_summary(call))
        return web.json_response(answer, status=status)

    def _apply_response(self, record: _ResponseUrl, args: Json) -> None:
        if args.get("delete_original"):
            self._delete_source(record)
            return
        text, blocks = self._message_content(args)
        if args.get("replace_original") and record.source_ts:
            if record.source_ephemeral:
                for eph in self.ephemerals:
                    if eph["ts"] == record.source_ts and eph["user"] == record.user_id:
                        eph["text"], eph["blocks"] = text, blocks or []
                        self._broadcast("ephemeral_changed", {"ephemeral": eph})
                        return
                raise _ApiError("message_not_found")
            message = self._find_message(record.channel_id, record.source_ts)
            message["text"] = text
            if blocks:
                message["blocks"] = blocks
            else:
                message.pop("blocks", None)
            message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
            self._broadcast("message_changed", {"channel": record.channel_id, "message": message})
            return
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if args.get("response_type") == "in_channel":
            # response_url works where the bot is not a member: the fallback for private channels.
            self._store_message(record.channel_id, self._bot_message(text, blocks, thread_ts=thread_ts))
        else:
            extra = {"thread_ts": thread_ts} if thread_ts else {}
            self._add_ephemeral(
                record.channel_id, record.user_id, text, blocks, source="response_url", **extra
            )

    def _delete_source(self, record: _ResponseUrl) -> None:
        if not record.source_ts:
            raise _ApiError("message_not_found")
        if record.source_ephemeral:
            before = len(self.ephemerals)
            self.ephemerals[:] = [e for e in self.ephemerals if e["ts"] != record.source_ts]
            if len(self.ephemerals) == before:
                raise _ApiError("message_not_found")
            self._broadcast("ephemeral_deleted", {"ts": record.source_ts, "user": record.user_id})
            return
        message = self._find_message(record.channel_id, record.source_ts)
        self._messages[record.channel_id].remove(message)
        self._broadcast("message_deleted", {"channel": record.channel_id, "ts": message["ts"]})

    # ------------------------------------------------------------------ the Slack client

    def _user_payload(self, user_id: str) -> Json:
        user = self._user(user_id)
        return {"id": user.id, "username": user.name, "name": user.name, "team_id": self.team_id}

    def _interaction_base(self, kind: str, user_id: str) -> Json:
        return {
            "type": kind,
            "user": self._user_payload(user_id),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    # ------------------------------------------------------------------ Socket Mode

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if ticket not in self._socket_tickets:
            raise web.HTTPUnauthorized(text="unknown or used Socket Mode URL")
        self._socket_tickets.discard(ticket)  # each URL from apps.connections.open is good once
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connections += 1
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": sum(not w.closed for w in self._sockets),
                    "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": API_APP_ID},
                }
            )
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    ack = json.loads(msg.data)
                except ValueError:
                    self._problem(f"socket: the bot sent something that is not JSON: {msg.data[:200]!r}")
                    continue
                if not isinstance(ack, dict) or not ack.get("envelope_id"):
                    self._problem(f"socket: the bot sent a message without envelope_id: {msg.data[:200]!r}")
                    continue
                self.socket_acks.append(ack)
                waiter = self._pending_acks.pop(str(ack["envelope_id"]), None)
                if waiter is None:
                    self._problem(f"socket: ack for an unknown or late envelope {ack['envelope_id']}")
                elif not waiter.done():
                    waiter.set_result(ack)
        finally:
            with contextlib.suppress(ValueError):
                self._sockets.remove(ws)
        return ws

    async def _deliver_socket(self, kind: str, payload: Json) -> tuple[SlackResponse, bytes]:
        sockets = [ws for ws in self._sockets if not ws.closed]
        started = time.monotonic()
        if not sockets:
            return SlackResponse(0, "", {}, "dispatch_failed"), b""
        envelope_id = secrets.token_hex(16)
        envelope = {
            "envelope_id": envelope_id,
            "type": "slash_commands" if kind == "slash_command" else "interactive",
            "accepts_response_payload": True,
            "payload": payload,
        }
        raw = json.dumps(envelope)
        waiter: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = waiter
        try:
            await sockets[-1].send_str(raw)
            ack = await asyncio.wait_for(waiter, self.ack_timeout)
        except TimeoutError:
            return SlackResponse(0, "", {}, "operation_timeout", time.monotonic() - started), raw.encode()
        except ConnectionError:
            return SlackResponse(0, "", {}, "dispatch_failed", time.monotonic() - started), raw.encode()
        finally:
            self._pending_acks.pop(envelope_id, None)
        answer = ack.get("payload")
        body = json.dumps(answer) if answer else ""
        headers = {"Content-Type": "application/json"} if body else {}
        return SlackResponse(200, body, headers, None, time.monotonic() - started), raw.encode()

    def _use_socket(self, socket: bool | None) -> bool:
        return self.socket_mode if socket is None else socket

    async def _deliver(
        self, kind: str, payload: Json, body: bytes, content_type: str, *, socket: bool | None = None
    ) -> SlackResponse:
        if self._use_socket(socket):
            response, envelope = await self._deliver_socket(kind, payload)
            self.deliveries.append(Delivery(kind, payload, envelope, {}, response, transport="socket"))
            if response.error:
                self._problem(f"{kind}: the bot gave no answer over the socket ({response.error})")
            return response
        if not self.bot_events_url:
            raise RuntimeError("set_bot_url() first: the simulator does not know where the bot listens")
        if self._session is None:
            raise RuntimeError("start() the simulator first")
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            # Wall time, not self._clock: the bot checks the age against its own clock (5 minutes).
            **self.sign(body, int(time.time())),
        }
        started = time.monotonic()
        try:
            async with self._session.post(
                self.bot_events_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.ack_timeout),
            ) as resp:
                text = await resp.text()
                response = SlackResponse(
                    resp.status, text, dict(resp.headers), None, time.monotonic() - started
                )
        except TimeoutError:
            response = SlackResponse(0, "", {}, "operation_timeout", time.monotonic() - started)
        except aiohttp.ClientError:
            response = SlackResponse(0, "", {}, "dispatch_failed", time.monotonic() - started)
        self.deliveries.append(Delivery(kind, payload, body, headers, response))
        if response.error:
            self._problem(f"{kind}: the bot gave no answer ({response.error})")
        elif response.status != 200:
            self._problem(f"{kind}: the bot answered HTTP {response.status}")
        return response

    async def _deliver_interaction(self, payload: Json, *, socket: bool | None = None) -> SlackResponse:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self._deliver(
            payload["type"], payload, body, "application/x-www-form-urlencoded", socket=socket
        )

    async def slash_command(
        self,
        text: str,
        *,
        user_id: str = ADMIN_ID,
        channel_id: str = GENERAL_ID,
        command: str = "/twilio",
        socket: bool | None = None,
    ) -> SlackResponse:
        """Run a slash command as a user: signed form POST to the bot, its ack shown like Slack shows it.

        Over the Socket Mode connection instead when ``socket`` (default: the simulator's ``socket_mode``).
        """
        user, channel = self._user(user_id), self._channel(channel_id)
        echo_ts, ack_ts = self._next_ts(), self._next_ts()
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel.id,
            "channel_name": "privategroup" if channel.is_private else channel.name,
            "user_id": user.id,
            "user_name": user.name,
            "command": command,
            "text": escape_mrkdwn(text),
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            # Its original is the ephemeral ack, which `delete_original`/`replace_original` act on.
            "response_url": self._issue_response_url(channel.id, user.id, source_ts=ack_ts, ephemeral=True),
            "trigger_id": self._issue_trigger(user.id),
        }
        echo = {
            "channel": channel.id,
            "user": user.id,
            "text": f"{command} {text}".strip(),
            "ts": echo_ts,
        }
        self._echoes.append(echo)
        self._broadcast("echo", {"echo": echo})
        # The ack is shown where it belongs (ack_ts), before anything the bot posts while we read its answer.
        response = await self._deliver(
            "slash_command",
            dict(fields),
            urlencode(fields).encode(),
            "application/x-www-form-urlencoded",
            socket=socket,
        )
        self._show_command_answer(response, channel, user, f"{command} {text}".strip(), echo["ts"], ack_ts)
        return response

    def _show_command_answer(
        self, response: SlackResponse, channel: _Channel, user: _User, line: str, user_ts: str, ack_ts: str
    ) -> None:
        command = line.split(" ", 1)[0]
        if response.error or response.status != 200:
            error = response.error or ("http_client_error" if response.status < 500 else "http_service_error")
            self._slack_says(channel.id, user.id, f'{command} failed with the error "{error}"', ack_ts)
            return
        if not response.body.strip():
            return
        answer = response.json()
        if not isinstance(answer, dict):
            self._add_ephemeral(channel.id, user.id, response.body, None, source="ack", ts=ack_ts)
            return
        if "text" not in answer and "blocks" not in answer:
            return
        try:
            body_text, blocks = self._message_content(answer)
        except _ApiError as exc:
            self._problem(f"slash_command: Slack would reject the ack: {exc.error} {exc.extra or ''}".strip())
            self._slack_says(channel.id, user.id, f'{command} failed with the error "invalid_blocks"', ack_ts)
            return
        if answer.get("response_type") == "in_channel":
            self._store_message(
                channel.id,
                {
                    "type": "message",
                    "user": user.id,
                    "text": escape_mrkdwn(line),
                    "ts": user_ts,
                    "team": self.team_id,
                },
            )
            self._store_message(channel.id, self._bot_message(body_text, blocks, ts=ack_ts))
        else:
            self._add_ephemeral(channel.id, user.id, body_text, blocks, source="ack", ts=ack_ts)

    def _action(self, block: Json, element: Json, value: Any) -> Json:
        kind = element.get("type", "button")
        action: Json = {
            "action_id": element.get("action_id"),
            "block_id": block.get("block_id"),
            "type": kind,
            "action_ts": self._next_ts(),
        }
        if kind == "button":
            action["text"] = element.get("text")
            chosen = value if value is not None else element.get("value")
            if chosen is not None:
                action["value"] = chosen
            if element.get("style"):
                action["style"] = element["style"]
        elif kind in {"static_select", "overflow", "radio_buttons", "external_select"}:
            options = element.get("options") or [
                o for g in element.get("option_groups") or [] for o in g.get("options") or []
            ]
            action["selected_option"] = next((o for o in options if o.get("value") == value), None)
        elif kind == "datepicker":
            action["selected_date"] = value
        elif kind == "timepicker":
            action["selected_time"] = value
        elif kind == "datetimepicker":
            action["selected_date_time"] = value
        else:
            action["value"] = value
        return action

    @staticmethod
    def _find_element(blocks: list[Json], action_id: str, block_id: str | None) -> tuple[Json, Json]:
        for block, element in _iter_elements(blocks):
            if element.get("action_id") == action_id and block_id in {None, block.get("block_id")}:
                return block, element
        raise LookupError(f"no element with action_id {action_id!r}")

    async def click(
        self,
        channel_id: str,
        message_ts: str,
        action_id: str,
        *,
        user_id: str = ADMIN_ID,
        value: Any = None,
        block_id: str | None = None,
        socket: bool | None = None,
    ) -> SlackResponse:
        """Click a button (or pick a value) in a channel message or an ephemeral one: ``block_actions``."""
        channel = self._channel(channel_id)
        ephemeral = next((e for e in self.ephemerals if e["ts"] == message_ts and e["user"] == user_id), None)
        message = ephemeral
        if message is None:
            try:
                message = self._find_message(channel.id, message_ts)
            except _ApiError:
                raise LookupError(f"no message {message_ts} in {channel_id}") from None
        block, element = self._find_element(message.get("blocks") or [], action_id, block_id)
        payload = self._interaction_base("block_actions", user_id)
        payload.update(
            {
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel.id,
                    "is_ephemeral": ephemeral is not None,
                },
                "trigger_id": self._issue_trigger(user_id),
                "channel": {"id": channel.id, "name": "privategroup" if channel.is_private else channel.name},
                "state": {"values": {}},
                "response_url": self._issue_response_url(
                    channel.id, user_id, source_ts=message_ts, ephemeral=ephemeral is not None
                ),
                "actions": [self._action(block, element, value)],
            }
        )
        if ephemeral is None:
            payload["message"] = copy.deepcopy(message)
        return await self._deliver_interaction(payload, socket=socket)

    def _open_view(self, view_id: str) -> _OpenView:
        try:
            return self._views[view_id]
        except KeyError:
            raise LookupError(f"no open view {view_id!r}") from None

    def _state_values(self, view: Json, values: Mapping[str, Mapping[str, Any]]) -> Json:
        """``state.values`` as Slack sends it: every input block, empty ones as None, ``type`` filled in."""
        state: Json = {}
        for block, element in _iter_elements(view.get("blocks") or []):
            if block.get("type") != "input" and block.get("block_id") not in values:
                continue
            given = (values.get(block["block_id"]) or {}).get(element["action_id"])
            if given is None:
                entry = _empty_state(element)
            else:
                # Slack sends an emptied field as null, never as "".
                entry = {"type": element.get("type"), **{k: None if v == "" else v for k, v in given.items()}}
            state.setdefault(block["block_id"], {})[element["action_id"]] = entry
        return state

    @staticmethod
    def _client_errors(view: Json, state: Json) -> dict[str, str]:
        """What Slack's own client refuses before sending: empty required fields, length limits."""
        errors: dict[str, str] = {}
        for block in view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            element = block.get("element") or {}
            entry = state.get(block["block_id"], {}).get(element.get("action_id"), {})
            if _is_empty(entry):
                if not block.get("optional"):
                    errors[block["block_id"]] = "Please complete this required field."
                continue
            value = entry.get("value")
            if element.get("type") == "plain_text_input" and isinstance(value, str):
                if element.get("max_length") is not None and len(value) > element["max_length"]:
                    errors[block["block_id"]] = f"Must be {element['max_length']} characters or fewer."
                elif element.get("min_length") is not None and len(value) < element["min_length"]:
                    errors[block["block_id"]] = f"Must be at least {element['min_length']} characters."
        return errors

    async def click_in_view(
        self,
        view_id: str,
        action_id: str,
        *,
        user_id: str | None = None,
        value: Any = None,
        block_id: str | None = None,
        values: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> SlackResponse:
        """Click a button (or change a dispatching input) inside an open modal: ``block_actions``."""
        ov = self._open_view(view_id)
        user = user_id or ov.user_id
        block, element = self._find_element(ov.view.get("blocks") or [], action_id, block_id)
        view = copy.deepcopy(ov.view)
        view["state"] = {"values": self._state_values(view, values or {})}
        payload = self._interaction_base("block_actions", user)
        payload.update(
            {
                "container": {"type": "view", "view_id": view_id},
                "trigger_id": self._issue_trigger(user, view_id),
                "view": view,
                "actions": [self._action(block, element, value)],
            }
        )
        return await self._deliver_interaction(payload)

    async def submit_view(
        self,
        view_id: str,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        user_id: str | None = None,
        validate: bool = True,
        socket: bool | None = None,
    ) -> SlackResponse:
        """Press the modal's submit button: ``view_submission``, then act on the bot's ``response_action``.

        ``values`` is ``{block_id: {action_id: value-dict}}`` as in ``state.values`` (``type`` may be
        left out). With ``validate`` (Slack's client does this) an empty required field or a value over
        ``max_length`` is flagged in the modal and nothing is sent: the answer has
        ``error="client_validation"`` and the errors as its JSON body.
        """
        ov = self._open_view(view_id)
        user = user_id or ov.user_id
        view = copy.deepcopy(ov.view)
        view["state"] = {"values": self._state_values(view, values or {})}
        if validate:
            client_errors = self._client_errors(view, view["state"]["values"])
            if client_errors:
                ov.errors = client_errors
                self._broadcast("view_errors", {"view_id": view_id, "errors": client_errors})
                body = json.dumps({"response_action": "errors", "errors": client_errors})
                return SlackResponse(0, body, {}, "client_validation")
        payload = self._interaction_base("view_submission", user)
        payload.update({"trigger_id": self._issue_trigger(user, view_id), "view": view, "response_urls": []})
        response = await self._deliver_interaction(payload, socket=socket)
        self._apply_submission_answer(ov, response)
        return response

    def _apply_submission_answer(self, ov: _OpenView, response: SlackResponse) -> None:
        view_id = ov.view["id"]
        if response.error or response.status != 200:
            self._broadcast("view_problem", {"view_id": view_id, "text": "We had some trouble connecting."})
            return
        if not response.body.strip():
            self._close_views(ov.user_id, [view_id])
            return
        answer = response.json()
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or action not in {"errors", "update", "push", "clear"}:
            self._problem(f"view_submission: Slack cannot use this answer: {response.body[:200]}")
            self._broadcast("view_problem", {"view_id": view_id, "text": "We had some trouble connecting."})
            return
        if action == "errors":
            errors = answer.get("errors")
            input_ids = {b.get("block_id") for b in ov.view.get("blocks") or [] if b.get("type") == "input"}
            if not isinstance(errors, dict) or not errors:
                self._problem("view_submission: response_action errors needs a non-empty errors object")
                return
            bad = sorted(str(k) for k in errors if k not in input_ids)
            if bad:
                self._problem(f"view_submission: errors keys are not input block_ids: {', '.join(bad)}")
            ov.errors = {str(k): str(v) for k, v in errors.items()}
            self._broadcast("view_errors", {"view_id": view_id, "errors": ov.errors})
        elif action == "clear":
            self._close_views(ov.user_id, list(self._stacks.get(ov.user_id, [])))
        else:
            errors_list = validate_view(answer.get("view"))
            if errors_list:
                self._problem(f"view_submission: invalid view in response_action {action}: {errors_list}")
                return
            try:
                if action == "update":
                    self._replace_view(ov, answer["view"])
                else:
                    self._open_stack(answer["view"], ov.user_id, push=True)
            except _ApiError as exc:
                self._problem(f"view_submission: response_action {action} failed: {exc.error}")

    async def close_view(self, view_id: str, *, user_id: str | None = None) -> SlackResponse | None:
        """Press the modal's close button; ``view_closed`` goes to the bot only with ``notify_on_close``."""
        ov = self._open_view(view_id)
        user = user_id or ov.user_id
        stack = self._stacks.get(ov.user_id, [])
        cleared = bool(ov.view.get("clear_on_close"))
        closing = list(stack) if cleared else [view_id]
        self._close_views(ov.user_id, closing)
        if not ov.view.get("notify_on_close"):
            return None
        payload = self._interaction_base("view_closed", user)
        payload.update({"view": copy.deepcopy(ov.view), "is_cleared": cleared})
        return await self._deliver_interaction(payload)

    # ------------------------------------------------------------------ the page

    async def _handle_index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def _handle_ui_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state(), headers={"Cache-Control": "no-store"})

    async def _handle_events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        queue: asyncio.Queue[tuple[str, Json] | None] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            await response.write(b"event: hello\ndata: {}\n\n")
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if item is None:
                    break
                kind, data = item
                await response.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
        except ConnectionResetError:
            pass
        finally:
            self._subscribers.discard(queue)
        return response

    async def _ui_body(self, request: web.Request) -> Json:
        # Requiring JSON makes a cross-site form post impossible without a CORS preflight.
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send application/json")
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="invalid JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return body

    @staticmethod
    def _ui_answer(response: SlackResponse | None) -> web.Response:
        if response is None:
            return web.json_response({"ok": True})
        return web.json_response(
            {
                "ok": response.error is None and response.status == 200,
                "status": response.status,
                "error": response.error,
                "body": response.json() if response.json() is not None else response.body,
            }
        )

    async def _ui_run(self, action: Callable[[], Awaitable[SlackResponse | None]]) -> web.Response:
        try:
            return self._ui_answer(await action())
        except (LookupError, RuntimeError, ValueError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)

    async def _handle_ui_command(self, request: web.Request) -> web.Response:
        body = await self._ui_body(request)
        line = str(body.get("text", "")).strip()
        user_id = str(body.get("user_id") or ADMIN_ID)
        channel_id = str(body.get("channel_id") or GENERAL_ID)
        if not line:
            return web.json_response({"ok": False, "error": "empty"}, status=400)
        if not line.startswith("/"):
            return await self._ui_run(lambda: self._ui_plain(line, user_id, channel_id))
        command, _, text = line.partition(" ")
        known = {c["command"] for c in self.manifest.commands}
        if command not in known:
            self._slack_says(channel_id, user_id, f"{command} is not a valid command.")
            return web.json_response({"ok": False, "error": "unknown_command"})
        return await self._ui_run(
            lambda: self.slash_command(text.strip(), user_id=user_id, channel_id=channel_id, command=command)
        )

    async def _ui_plain(self, line: str, user_id: str, channel_id: str) -> None:
        self.post_user_message(line, user_id=user_id, channel_id=channel_id)

    async def _handle_ui_click(self, request: web.Request) -> web.Response:
        body = await self._ui_body(request)
        user_id = str(body.get("user_id") or ADMIN_ID)
        if body.get("view_id"):
            return await self._ui_run(
                lambda: self.click_in_view(
                    str(body["view_id"]),
                    str(body.get("action_id")),
                    user_id=user_id,
                    value=body.get("value"),
                    block_id=body.get("block_id"),
                    values=body.get("values") or {},
                )
            )
        return await self._ui_run(
            lambda: self.click(
                str(body.get("channel_id")),
                str(body.get("message_ts")),
                str(body.get("action_id")),
                user_id=user_id,
                value=body.get("value"),
                block_id=body.get("block_id"),
            )
        )

    async def _handle_ui_submit(self, request: web.Request) -> web.Response:
        body = await self._ui_body(request)
        values = body.get("values") or {}
        user_id = body.get("user_id")
        return await self._ui_run(
            lambda: self.submit_view(
                str(body.get("view_id")), values, user_id=str(user_id) if user_id else None
            )
        )

    async def _handle_ui_close(self, request: web.Request) -> web.Response:
        body = await self._ui_body(request)
        user_id = body.get("user_id")
        return await self._ui_run(
            lambda: self.close_view(str(body.get("view_id")), user_id=str(user_id) if user_id else None)
        )


__all__ = [
    "ADMIN_ID",
    "API_APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "GENERAL_ID",
    "MEMBER_ID",
    "OPS_ID",
    "PRIVATE_ID",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "ApiCall",
    "Delivery",
    "ManifestInfo",
    "SlackResponse",
    "SlackSimulator",
    "escape_mrkdwn",
    "read_manifest",
    "validate_blocks",
    "validate_view",
]

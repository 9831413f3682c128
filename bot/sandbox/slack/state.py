"""What the simulated Slack holds and every face shares: teams and tokens, channels' messages, ephemerals,
open modals, files, App Home views, and the request signer.

`SlackState` is the base of `SlackSimulator`: the Web API, Socket Mode, the client and the page each
add their part on top of it (one mixin a module).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.slack.blockkit import _iter_elements, validate_blocks
from bot.sandbox.slack.manifest import DEFAULT_MANIFEST, read_manifest
from bot.sandbox.slack.records import (
    ApiCall,
    Delivery,
    Json,
    SlackResponse,
    _ApiError,
    _Fault,
    _json_arg,
    _OpenView,
    _ResponseUrl,
    _Token,
    _Trigger,
    call_summary,
)
from bot.sandbox.slack.workspace import (
    API_APP_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    Team,
    _Channel,
    _User,
    default_channels,
    default_users,
)

if TYPE_CHECKING:
    from bot.sandbox.slack.files import _File, _Upload
    from bot.sandbox.slack.oauth import _Code
    from bot.sandbox.slack.rate_limits import RateLimiter

MAX_BLOCKS_JSON = 13_000
MAX_VIEW_STACK = 3
CLIENT_ID = "1000000000.2000000000"
CLIENT_SECRET = "playground-client-secret"  # noqa: S105 - the simulated app's, printed by the playground


class SlackState:
    """The workspace, its messages and modal stacks, and the records every face appends to."""

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
        events: Collection[str] | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        token_rotation: bool | None = None,
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
        # The events the app subscribes to (message.channels, app_home_opened…): only these are sent.
        self.bot_events = frozenset(events) if events is not None else self.manifest.bot_events
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_rotation = self.manifest.token_rotation if token_rotation is None else token_rotation

        # The first team, installed with `bot_token`; add_team makes more.
        self.team = Team(team_id, "Playground", team_domain)
        self.teams: dict[str, Team] = {team_id: self.team}
        self._tokens: dict[str, _Token] = {bot_token: _Token(bot_token, team_id, None)}
        self._refresh_tokens: dict[str, str] = {}  # refresh token → team id
        self._oauth_codes: dict[str, _Code] = {}
        self.installs: list[Json] = []  # every OAuth authorization: team, scopes, outcome
        self.oauth_redirect_url: str | None = None  # where the authorize page sends people by default

        self.users: dict[str, _User] = default_users(self.manifest.bot_name, self.manifest.app_name)
        self.channels: dict[str, _Channel] = default_channels()

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
        # Events API
        self.skipped_events: list[Json] = []  # events not sent: the app does not subscribe, or no bot URL
        self.event_retry_delays: tuple[float, ...] = (0.0, 0.0, 0.0)  # Slack: ~1 min and ~5 min apart
        self._forced_retries: list[str] = []  # retry reasons to force on the next deliveries
        self._event_tasks: set[asyncio.Task[list[Delivery]]] = set()
        # Files, reactions, App Home, rate limits
        self._files: dict[str, _File] = {}
        self._uploads: dict[str, _Upload] = {}
        self.file_downloads: list[Json] = []  # every url_private request: file, had a token, served
        self.home_views: dict[tuple[str, str], Json] = {}  # (team id, user id) → the published Home view
        self.rate_limiter: RateLimiter | None = None
        self.rate_limited: list[ApiCall] = []

    # ------------------------------------------------------------------ what it recorded

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

    # ------------------------------------------------------------------ state

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        """The two headers Slack signs a request with (every request to the bot goes through here)."""
        signature = self._verifier.generate_signature(timestamp=str(timestamp), body=body)
        return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature or ""}

    def _bot_headers(self, body: bytes, content_type: str) -> dict[str, str]:
        """Headers of a request to the bot's request URL, signed like Slack signs them."""
        return {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            # Wall time, not self._clock: the bot checks the age against its own clock (5 minutes).
            **self.sign(body, int(time.time())),
        }

    async def _post_to_bot(self, body: bytes, headers: Mapping[str, str]) -> SlackResponse:
        """POST to the bot's request URL within ack_timeout; no answer becomes the response's error."""
        assert self._session is not None and self.bot_events_url
        started = time.monotonic()
        try:
            async with self._session.post(
                self.bot_events_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.ack_timeout),
            ) as resp:
                text = await resp.text()
                return SlackResponse(resp.status, text, dict(resp.headers), None, time.monotonic() - started)
        except TimeoutError:
            return SlackResponse(0, "", {}, "operation_timeout", time.monotonic() - started)
        except aiohttp.ClientError:
            return SlackResponse(0, "", {}, "dispatch_failed", time.monotonic() - started)

    def _team(self, team_id: str | None) -> Team:
        return self.teams[team_id or self.team_id]

    def _team_of_user(self, user: _User) -> Team:
        return self._team(user.team_id)

    def _team_of_channel(self, channel: _Channel) -> Team:
        return self._team(channel.team_id)

    def _user(self, user_id: str) -> _User:
        try:
            return self.users[user_id]
        except KeyError:
            raise LookupError(f"no user {user_id!r}") from None

    def _channel(self, ref: str, team: Team | None = None) -> _Channel:
        """A channel by ID, or by name (in `team`, else the first team that has it)."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.lstrip("#")
        found = [c for c in self.channels.values() if c.name == name]
        for channel in found:
            if team is None or self._team_of_channel(channel).id == team.id:
                return channel
        raise LookupError(f"no channel {ref!r}")

    def _next_ts(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _short_id(self, prefix: str, length: int = 10) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        return prefix + "".join(secrets.choice(alphabet) for _ in range(length))

    def _broadcast(self, kind: str, data: Json) -> None:
        for queue in self._subscribers:
            queue.put_nowait((kind, data))

    def _record_call(self, call: ApiCall) -> None:
        self.calls.append(call)
        self._broadcast("call", call_summary(call))

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        self._broadcast("problem", {"text": text})

    def _bot_message(
        self,
        text: str,
        blocks: list[Json] | None,
        thread_ts: str | None = None,
        ts: str | None = None,
        *,
        team: Team | None = None,
    ) -> Json:
        team = team or self.team
        message: Json = {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "user": team.bot_user_id,
            "bot_id": team.bot_id,
            "app_id": API_APP_ID,
            "team": team.id,
            "bot_profile": {
                "id": team.bot_id,
                "app_id": API_APP_ID,
                "name": self.manifest.app_name,
                "team_id": team.id,
            },
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

    def _message_content(self, args: Json, *, required: bool = True) -> tuple[str, list[Json] | None]:
        text = args.get("text")
        blocks = self._prepare_blocks(args.get("blocks"))
        if required and not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        if text is not None and not isinstance(text, str):
            raise _ApiError("invalid_arguments")
        return (text or "")[:40_000], blocks

    # ------------------------------------------------------------------ modal stacks

    def _build_view(
        self, spec: Json, *, view_id: str, root_id: str, previous_id: str | None, team: Team | None = None
    ) -> Json:
        team = team or self.team
        blocks = self._prepare_blocks(spec.get("blocks"), surface=str(spec.get("type") or "modal")) or []
        return {
            "id": view_id,
            "team_id": team.id,
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
            "app_installed_team_id": team.id,
            "bot_id": team.bot_id,
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
        view = self._build_view(
            spec,
            view_id=view_id,
            root_id=root,
            previous_id=stack[-1] if stack else None,
            team=self._team_of_user(self._user(user_id)),
        )
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

    def _replace_view(self, ov: _OpenView, spec: Json) -> Json:
        old = ov.view
        ov.view = self._build_view(
            spec,
            view_id=old["id"],
            root_id=old["root_view_id"],
            previous_id=old["previous_view_id"],
            team=self._team(old["team_id"]),
        )
        ov.errors = {}
        self._broadcast_view(old["id"], "view_updated")
        return ov.view

"""The Web API the bot calls (``/api/<method>``), with Slack's errors (response URLs: `response_urls`).

Each call is made as the team of its token (`Caller`, see `teams`) and recorded with it; scope checks
come from the token's grant or the manifest; faults can be injected (429 with ``Retry-After``, 5xx,
``ok: false``) and rate limits switched on (`rate_limits`). Other modules add methods to `METHODS`
(history, reactions, files, App Home, OAuth), and the simulator serves them all.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from aiohttp import web

from bot.sandbox.slack.blockkit import validate_view
from bot.sandbox.slack.records import (
    ApiCall,
    Json,
    _ApiError,
    _Fault,
    _json_arg,
    _Trigger,
)
from bot.sandbox.slack.teams import Teams
from bot.sandbox.slack.workspace import Caller, _Channel, _handle

Handler = Callable[[Any, Json, Caller], Json]
TokenlessHandler = Callable[[Any, Json], Json]

TRIGGER_TTL = 3.0
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_MAX_USES = 5

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
    "reactions.add": ("reactions:write",),
    "reactions.remove": ("reactions:write",),
    "reactions.get": ("reactions:read",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "files.info": ("files:read",),
}


class WebApi(Teams):
    """The ``/api/`` and ``/response/`` routes: what the bot calls, checked and recorded as Slack would."""

    api_methods: ClassVar[Mapping[str, Handler]] = {}  # filled in below, and by the simulator
    tokenless_methods: ClassVar[Mapping[str, TokenlessHandler]] = {}  # authenticated by client id/secret

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
        for name in ("blocks", "view", "attachments", "metadata"):
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
        team_id: str | None = None
        fault: _Fault | None = None
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
            elif method in self.tokenless_methods:
                body = self._call_tokenless(method, args, auth)
            elif method not in self.api_methods:
                body = {"ok": False, "error": "unknown_method"}
            elif not token:
                body = {"ok": False, "error": "not_authed"}
            elif method == "apps.connections.open":
                body = self._apps_connections_open(token)
            else:
                try:
                    caller = self._caller(token)
                    team_id = caller.team.id
                    self._check_scopes(method, caller)
                    retry_after = self._rate_limit(method, caller, args)
                    if retry_after is not None:
                        status, headers["Retry-After"] = 429, str(retry_after)
                        body = {"ok": False, "error": "ratelimited"}
                    else:
                        body = self.api_methods[method](self, args, caller)
                except _ApiError as exc:
                    body = {"ok": False, "error": exc.error, **exc.extra}
        call = ApiCall(method, args, self._clock(), status, copy.deepcopy(body), team_id)
        self._record_call(call)
        if status == 429 and fault is None:
            self.rate_limited.append(call)
        return web.json_response(body, status=status, headers=headers)

    def _call_tokenless(self, method: str, args: Json, auth: str) -> Json:
        """Methods that authenticate with the app's client id and secret (Basic auth or form fields)."""
        if auth.startswith("Basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                args.setdefault("client_id", user)
                args.setdefault("client_secret", password)
        try:
            return self.tokenless_methods[method](self, args)
        except _ApiError as exc:
            return {"ok": False, "error": exc.error, **exc.extra}

    def _check_scopes(self, method: str, caller: Caller) -> None:
        needed = METHOD_SCOPES.get(method)
        if caller.scopes is not None and needed and not (set(needed) & caller.scopes):
            raise _ApiError(
                "missing_scope", needed=",".join(needed), provided=",".join(sorted(caller.scopes))
            )

    def _rate_limit(self, method: str, caller: Caller, args: Json) -> int | None:
        if self.rate_limiter is None:
            return None
        return self.rate_limiter.check(method, caller.team.id, str(args.get("channel") or ""), self._clock())

    def _auth_test(self, args: Json, caller: Caller) -> Json:
        team = caller.team
        return {
            "ok": True,
            "url": f"https://{team.domain}.slack.com/",
            "team": team.name,
            "user": _handle(self.manifest.bot_name),
            "team_id": team.id,
            "user_id": team.bot_user_id,
            "bot_id": team.bot_id,
            "enterprise_id": team.enterprise_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, token: str) -> Json:
        if token in self._tokens:
            return {"ok": False, "error": "not_allowed_token_type"}
        if not self.app_token or token != self.app_token:
            return {"ok": False, "error": "invalid_auth"}
        ticket = secrets.token_urlsafe(12)
        self._socket_tickets.add(ticket)
        return {"ok": True, "url": f"{self.url.replace('http://', 'ws://', 1)}/socket/{ticket}"}

    def _api_channel(self, args: Json, caller: Caller, *, not_member: str, key: str = "channel") -> _Channel:
        """The channel in ``args`` (of the caller's team); a private one without the bot: ``not_member``."""
        try:
            channel = self._channel(str(args.get(key) or ""), caller.team)
        except LookupError:
            raise _ApiError("channel_not_found") from None
        if self._team_of_channel(channel).id != caller.team.id:
            raise _ApiError("channel_not_found")  # another workspace's channel does not exist for this token
        if channel.is_private and not channel.bot_member:
            raise _ApiError(not_member)
        return channel

    def _writable_channel(self, args: Json, caller: Caller) -> _Channel:
        return self._api_channel(args, caller, not_member="not_in_channel")

    def _chat_post_message(self, args: Json, caller: Caller) -> Json:
        channel = self._writable_channel(args, caller)
        text, blocks = self._message_content(args)
        metadata = _metadata(args.get("metadata"))
        thread_ts = args.get("thread_ts") or None
        if thread_ts:
            self._find_message(channel.id, str(thread_ts))
        message = self._bot_message(
            text, blocks, thread_ts=str(thread_ts) if thread_ts else None, team=caller.team
        )
        if metadata is not None:
            message["metadata"] = metadata
        self._store_message(channel.id, message)
        self._raise_channel_event(channel, self._message_event(channel, message))
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": message}

    def _chat_update(self, args: Json, caller: Caller) -> Json:
        channel = self._writable_channel(args, caller)
        message = self._find_message(channel.id, str(args.get("ts", "")))
        if message.get("bot_id") != caller.team.bot_id:
            raise _ApiError("cant_update_message")
        previous = copy.deepcopy(message)
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
        if "metadata" in args:
            metadata = _metadata(args.get("metadata"))
            if metadata is not None:
                message["metadata"] = metadata
        message["edited"] = {"user": caller.team.bot_user_id, "ts": self._next_ts()}
        self._broadcast("message_changed", {"channel": channel.id, "message": message})
        self._raise_channel_event(channel, self._changed_event(channel, message, previous))
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": message,
        }

    def _chat_delete(self, args: Json, caller: Caller) -> Json:
        channel = self._writable_channel(args, caller)
        message = self._find_message(channel.id, str(args.get("ts", "")))
        if message.get("bot_id") != caller.team.bot_id:
            raise _ApiError("cant_delete_message")
        self._messages[channel.id].remove(message)
        self._broadcast("message_deleted", {"channel": channel.id, "ts": message["ts"]})
        self._raise_channel_event(channel, self._deleted_event(channel, message))
        return {"ok": True, "channel": channel.id, "ts": message["ts"]}

    def _chat_post_ephemeral(self, args: Json, caller: Caller) -> Json:
        channel = self._writable_channel(args, caller)
        user_id = str(args.get("user", ""))
        if user_id not in self.users or self._team_of_user(self.users[user_id]).id != caller.team.id:
            raise _ApiError("user_not_found")
        if user_id not in channel.members:
            raise _ApiError("user_not_in_channel")
        text, blocks = self._message_content(args)
        thread_ts = args.get("thread_ts")
        extra = {"thread_ts": str(thread_ts)} if thread_ts else {}
        eph = self._add_ephemeral(channel.id, user_id, text, blocks, source="chat.postEphemeral", **extra)
        return {"ok": True, "message_ts": eph["ts"]}

    def _chat_get_permalink(self, args: Json, caller: Caller) -> Json:
        channel = self._writable_channel(args, caller)
        message = self._find_message(channel.id, str(args.get("message_ts", "")))
        ts = message["ts"].replace(".", "")
        return {
            "ok": True,
            "channel": channel.id,
            "permalink": f"https://{caller.team.domain}.slack.com/archives/{channel.id}/p{ts}",
        }

    def _users_info(self, args: Json, caller: Caller) -> Json:
        user = self.users.get(str(args.get("user", "")))
        if user is None or self._team_of_user(user).id != caller.team.id:
            raise _ApiError("user_not_found")
        return {"ok": True, "user": user.to_slack(caller.team.id)}

    def _users_list(self, args: Json, caller: Caller) -> Json:
        return {
            "ok": True,
            "members": [u.to_slack(caller.team.id) for u in self._people(caller.team)],
            "response_metadata": {"next_cursor": ""},
        }

    def _visible_channel(self, args: Json, caller: Caller) -> _Channel:
        # Slack does not admit that a private channel it is not in exists.
        return self._api_channel(args, caller, not_member="channel_not_found")

    def _conversations_info(self, args: Json, caller: Caller) -> Json:
        return {"ok": True, "channel": self._visible_channel(args, caller).to_slack()}

    def _conversations_list(self, args: Json, caller: Caller) -> Json:
        types = str(args.get("types") or "public_channel").split(",")
        found = [
            c.to_slack()
            for c in self.channels.values()
            if self._team_of_channel(c).id == caller.team.id
            and (
                ("private_channel" in types and c.is_private and c.bot_member)
                or ("public_channel" in types and not c.is_private)
            )
        ]
        return {"ok": True, "channels": found, "response_metadata": {"next_cursor": ""}}

    def _conversations_replies(self, args: Json, caller: Caller) -> Json:
        channel = self._visible_channel(args, caller)
        ts = str(args.get("ts", ""))
        self._find_message(channel.id, ts)
        thread = [m for m in self._messages[channel.id] if m["ts"] == ts or m.get("thread_ts") == ts]
        return {"ok": True, "messages": thread, "has_more": False}

    def _team_info(self, args: Json, caller: Caller) -> Json:
        team = caller.team
        return {"ok": True, "team": {"id": team.id, "name": team.name, "domain": team.domain}}

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

    def _views_open(self, args: Json, caller: Caller) -> Json:
        trigger = self._use_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        view = self._open_stack(self._checked_view(args.get("view")), trigger.user_id, push=False)
        return {"ok": True, "view": view}

    def _views_push(self, args: Json, caller: Caller) -> Json:
        trigger = self._use_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        view = self._open_stack(self._checked_view(args.get("view")), trigger.user_id, push=True)
        return {"ok": True, "view": view}

    def _views_update(self, args: Json, caller: Caller) -> Json:
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


METHODS: dict[str, Handler] = {
    "api.test": lambda api, args, caller: {"ok": True, "args": args},
    "auth.test": WebApi._auth_test,
    "chat.postMessage": WebApi._chat_post_message,
    "chat.update": WebApi._chat_update,
    "chat.delete": WebApi._chat_delete,
    "chat.postEphemeral": WebApi._chat_post_ephemeral,
    "chat.getPermalink": WebApi._chat_get_permalink,
    "views.open": WebApi._views_open,
    "views.push": WebApi._views_push,
    "views.update": WebApi._views_update,
    "users.info": WebApi._users_info,
    "users.list": WebApi._users_list,
    "conversations.info": WebApi._conversations_info,
    "conversations.list": WebApi._conversations_list,
    "conversations.replies": WebApi._conversations_replies,
    "team.info": WebApi._team_info,
    "apps.connections.open": lambda api, args, caller: {
        "ok": False,
        "error": "invalid_auth",
    },  # see _handle_api
}
WebApi.api_methods = METHODS


def _metadata(raw: Any) -> Json | None:
    """Message metadata as Slack checks it: ``{event_type, event_payload}``."""
    if raw is None or raw == "":
        return None
    value = _json_arg(raw, "metadata") if isinstance(raw, str | bytes) else raw
    if not isinstance(value, dict):
        raise _ApiError("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload", {})
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise _ApiError("invalid_metadata_schema")
    return {"event_type": event_type, "event_payload": copy.deepcopy(payload)}

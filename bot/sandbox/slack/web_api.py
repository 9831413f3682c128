"""The Web API the bot calls (``/api/<method>``) and the response URLs it posts to, with Slack's errors.

Scope checks come from the manifest; faults can be injected (429 with ``Retry-After``, 5xx, ``ok: false``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bot.sandbox.slack.blockkit import validate_view
from bot.sandbox.slack.records import (
    ApiCall,
    Json,
    _ApiError,
    _Fault,
    _json_arg,
    _ResponseUrl,
    _Trigger,
)
from bot.sandbox.slack.state import SlackState
from bot.sandbox.slack.workspace import BOT_ID, BOT_USER_ID, _Channel, _handle

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
}


def _metadata(raw: Any) -> Json:
    """Message metadata as Slack stores it; anything else is Slack's ``invalid_metadata_format``."""
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("event_type"), str)
        or not isinstance(raw.get("event_payload"), dict)
    ):
        raise _ApiError("invalid_metadata_format")
    return {"event_type": raw["event_type"], "event_payload": copy.deepcopy(raw["event_payload"])}


class WebApi(SlackState):
    """The ``/api/`` and ``/response/`` routes: what the bot calls, checked and recorded as Slack would."""

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
            elif method not in _METHODS:
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
                    body = _METHODS[method](self, args)
                except _ApiError as exc:
                    body = {"ok": False, "error": exc.error, **exc.extra}
        self._record_call(ApiCall(method, args, self._clock(), status, copy.deepcopy(body)))
        return web.json_response(body, status=status, headers=headers)

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

    def _api_channel(self, args: Json, *, not_member: str) -> _Channel:
        """The channel in ``args``; a private one without the bot answers ``not_member``."""
        try:
            channel = self._channel(str(args.get("channel") or ""))
        except LookupError:
            raise _ApiError("channel_not_found") from None
        if channel.is_private and not channel.bot_member:
            raise _ApiError(not_member)
        return channel

    def _writable_channel(self, args: Json) -> _Channel:
        return self._api_channel(args, not_member="not_in_channel")

    def _chat_post_message(self, args: Json) -> Json:
        channel = self._writable_channel(args)
        text, blocks = self._message_content(args)
        thread_ts = args.get("thread_ts") or None
        message = self._bot_message(text, blocks, thread_ts=str(thread_ts) if thread_ts else None)
        if args.get("metadata"):
            message["metadata"] = _metadata(args["metadata"])
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
        # Slack does not admit that a private channel it is not in exists.
        return self._api_channel(args, not_member="channel_not_found")

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
        try:
            limit = int(args.get("limit") or 100)
            oldest = float(args.get("oldest") or 0)
            start = int(args.get("cursor") or 0)
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        # Newest first; `oldest` is exclusive, as in Slack (without inclusive=true).
        top = [
            m
            for m in reversed(self._messages[channel.id])
            if m.get("thread_ts", m["ts"]) == m["ts"] and float(m["ts"]) > oldest
        ]
        page = top[start : start + limit]
        if str(args.get("include_all_metadata")).lower() not in {"true", "1"}:
            page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = len(top) > start + limit
        body: Json = {"ok": True, "messages": page, "has_more": more}
        body["response_metadata"] = {"next_cursor": str(start + limit) if more else ""}
        return body

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

    def _views_open(self, args: Json) -> Json:
        trigger = self._use_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        view = self._open_stack(self._checked_view(args.get("view")), trigger.user_id, push=False)
        return {"ok": True, "view": view}

    def _views_push(self, args: Json) -> Json:
        trigger = self._use_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        view = self._open_stack(self._checked_view(args.get("view")), trigger.user_id, push=True)
        return {"ok": True, "view": view}

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
        self._record_call(ApiCall("response_url", {**args, "url_id": rid}, self._clock(), status, answer))
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


_METHODS: Mapping[str, Callable[[WebApi, Json], Json]] = {
    "api.test": lambda api, args: {"ok": True, "args": args},
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
    "conversations.history": WebApi._conversations_history,
    "conversations.replies": WebApi._conversations_replies,
    "team.info": WebApi._team_info,
    "apps.connections.open": lambda api, args: {"ok": False, "error": "invalid_auth"},  # see _handle_api
}

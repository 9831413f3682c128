"""Response URLs: where the bot answers a slash command or a click (``POST /response/{id}``), as Slack does.

Each URL works five times within 30 minutes; ``replace_original`` edits the message it came from,
``delete_original`` removes it, ``response_type: in_channel`` posts for everyone (even where the bot is
not a member: the fallback for private channels), and anything else is shown to the person alone.
"""

from __future__ import annotations

from aiohttp import web

from bot.sandbox.slack.records import ApiCall, Json, _ApiError, _ResponseUrl
from bot.sandbox.slack.web_api import RESPONSE_URL_MAX_USES, RESPONSE_URL_TTL, WebApi


class ResponseUrls(WebApi):
    """``/response/{id}``: the bot's answers through response URLs."""

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
            team = self._team_of_channel(self._channel(record.channel_id))
            message["edited"] = {"user": team.bot_user_id, "ts": self._next_ts()}
            self._broadcast("message_changed", {"channel": record.channel_id, "message": message})
            return
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if args.get("response_type") == "in_channel":
            # response_url works where the bot is not a member: the fallback for private channels.
            team = self._team_of_channel(self._channel(record.channel_id))
            self._store_message(
                record.channel_id, self._bot_message(text, blocks, thread_ts=thread_ts, team=team)
            )
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

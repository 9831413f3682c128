"""The playground page: looks like a Slack channel, updates live over server-sent events, drives the client.

``GET /`` serves the page, ``GET /events`` the event stream, and JSON endpoints under ``/ui/`` run the
client's actions: commands and typed messages (``thread_ts`` for a reply), clicks, submissions,
closing a modal, opening the App Home (``/ui/app_home``) and removing the app (``/ui/uninstall``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bot.sandbox.slack.activity import UserActivity
from bot.sandbox.slack.app_home import AppHome
from bot.sandbox.slack.client import Client
from bot.sandbox.slack.records import Json, SlackResponse, call_summary
from bot.sandbox.slack.workspace import ADMIN_ID, BOT_ID, BOT_USER_ID, GENERAL_ID

STATIC_DIR = Path(__file__).with_name("static")


class Page(Client, UserActivity, AppHome):
    """The page and its ``/ui/`` endpoints."""

    def state(self, *, with_messages: bool = True) -> Json:
        """Everything the page needs to draw itself."""
        views = [
            {"view": ov.view, "user_id": ov.user_id, "seq": ov.seq, "errors": ov.errors}
            for ov in self._views.values()
        ]
        state: Json = {
            "team": {"id": self.team_id, "domain": self.team_domain},
            "teams": [t.to_json() for t in self.teams.values()],
            "app": {"name": self.manifest.app_name, "bot_user_id": BOT_USER_ID, "bot_id": BOT_ID},
            "users": [u.to_slack(u.team_id or self.team_id) for u in self.users.values()],
            "channels": [
                {**c.to_slack(), "team_id": c.team_id or self.team_id} for c in self.channels.values()
            ],
            "commands": list(self.manifest.commands),
            "subcommands": [
                {"name": n, "usage": u, "description": self.command_descriptions.get(n, "")}
                for n, u in self.command_hints
            ],
            "bot_url": self.bot_events_url,
            "views": views,
            "home_views": [
                {"team_id": team_id, "user_id": user_id, "view": view}
                for (team_id, user_id), view in self.home_views.items()
            ],
            "problems": self.problems[-20:],
            "calls": [call_summary(c) for c in self.calls[-50:]],
        }
        if with_messages:
            state["messages"] = self._messages
            state["ephemerals"] = self.ephemerals
            state["echoes"] = self._echoes
        return state

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
        # "//…" is a message (an internal note in a conversation thread), not a slash command.
        if not line.startswith("/") or line.startswith("//"):
            thread_ts = str(body["thread_ts"]) if body.get("thread_ts") else None
            return await self._ui_run(lambda: self._ui_plain(line, user_id, channel_id, thread_ts))
        command, _, text = line.partition(" ")
        known = {c["command"] for c in self.manifest.commands}
        if command not in known:
            self._slack_says(channel_id, user_id, f"{command} is not a valid command.")
            return web.json_response({"ok": False, "error": "unknown_command"})
        return await self._ui_run(
            lambda: self.slash_command(text.strip(), user_id=user_id, channel_id=channel_id, command=command)
        )

    async def _ui_plain(self, line: str, user_id: str, channel_id: str, thread_ts: str | None) -> None:
        # A typed message (or thread reply) reaches the bot as a message event, as in Slack.
        await self.post_message(channel_id, line, user=user_id, thread_ts=thread_ts)

    async def _handle_ui_click(self, request: web.Request) -> web.Response:
        body = await self._ui_body(request)
        user_id = str(body.get("user_id") or ADMIN_ID)
        if body.get("home"):
            return await self._ui_run(
                lambda: self.click_in_home(
                    user_id,
                    str(body.get("action_id")),
                    value=body.get("value"),
                    block_id=body.get("block_id"),
                )
            )
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

    async def _handle_ui_app_home(self, request: web.Request) -> web.Response:
        body = await self._ui_body(request)
        user_id = str(body.get("user_id") or ADMIN_ID)

        async def open_home() -> None:
            await self.open_app_home(user_id, str(body.get("tab") or "home"))

        return await self._ui_run(open_home)

    async def _handle_ui_uninstall(self, request: web.Request) -> web.Response:
        body = await self._ui_body(request)
        team_id = str(body.get("team_id") or self.team_id)
        if team_id not in self.teams:
            return web.json_response({"ok": False, "error": f"no team {team_id}"}, status=400)

        async def uninstall() -> None:
            await self.uninstall_app(team_id)

        return await self._ui_run(uninstall)

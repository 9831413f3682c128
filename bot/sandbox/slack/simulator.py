"""`SlackSimulator`: the Web API, Events API, OAuth, Socket Mode, the client and the page on one server."""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

import aiohttp
from aiohttp import web

from bot.sandbox.slack import app_home, files, history, oauth, reactions, web_api
from bot.sandbox.slack.history import History
from bot.sandbox.slack.oauth import OAuth
from bot.sandbox.slack.page import STATIC_DIR, Page
from bot.sandbox.slack.rate_limits import DEFAULT_LIMITS, Limit, RateLimiter
from bot.sandbox.slack.reactions import Reactions
from bot.sandbox.slack.response_urls import ResponseUrls
from bot.sandbox.slack.web_api import Handler, TokenlessHandler


class SlackSimulator(Page, OAuth, Reactions, History, ResponseUrls):
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
    ``dispatch_failed``, as in Slack. Events (`events`) go the same way.

    ``events`` overrides the manifest's bot events; ``client_id``/``client_secret`` are the app's for
    OAuth (`oauth`), ``token_rotation`` overrides the manifest's ``token_rotation_enabled``.
    """

    api_methods: ClassVar[dict[str, Handler]] = {
        **web_api.METHODS,
        **history.METHODS,
        **reactions.METHODS,
        **files.METHODS,
        **app_home.METHODS,
        **oauth.METHODS,
    }
    tokenless_methods: ClassVar[dict[str, TokenlessHandler]] = dict(oauth.TOKENLESS_METHODS)

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
        app.router.add_post("/ui/app_home", self._handle_ui_app_home)
        app.router.add_post("/ui/uninstall", self._handle_ui_uninstall)
        self._add_file_routes(app)
        self._add_oauth_routes(app)
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
        """Close live event streams, events in flight, the outgoing HTTP session and the server."""
        for task in list(self._event_tasks):
            task.cancel()
        await asyncio.gather(*self._event_tasks, return_exceptions=True)
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

    def enable_rate_limits(
        self, *, post_per_second: float = 1.0, post_burst: int = 3, update_per_minute: float = 50.0
    ) -> RateLimiter:
        """Answer 429 beyond Slack's limits: ``chat.postMessage`` per channel, ``chat.update`` per team."""
        limits = dict(DEFAULT_LIMITS)
        limits["chat.postMessage"] = Limit(post_per_second, post_burst, per_channel=True)
        limits["chat.update"] = Limit(update_per_minute / 60, max(1, int(update_per_minute)))
        self.rate_limiter = RateLimiter(limits)
        return self.rate_limiter

    def disable_rate_limits(self) -> None:
        """Stop answering 429 for rate limits (injected faults still apply)."""
        self.rate_limiter = None

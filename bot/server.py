"""The aiohttp server: POST /slack/events into Bolt, GET /healthz, and the process's lifecycle.

Start-up opens the database and one HTTP session, builds the Bolt app and settles what a previous process
left unfinished. Shut-down stops taking work, lets running operations finish (bounded) and closes cleanly.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.operations import Operations
from bot.settings import Settings
from bot.slack import cards
from bot.slack.app import build_app, web_client
from bot.slack.delivery import Delivery
from bot.slack.permissions import Permissions
from bot.slack.runner import SlackDeps
from bot.tasks import TaskTracker
from bot.twilio.client import TwilioClient
from bot.twilio.errors import TwilioError
from storage.accounts import AccountStore
from storage.audit import AuditLog
from storage.db import Database
from storage.outbox import Outbox, OutboxEntry
from storage.teams import TeamSettings

log = logging.getLogger(__name__)

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")


def utcnow() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass
class Runtime:
    """What one running bot holds: opened at start-up, closed at shut-down."""

    settings: Settings
    db: Database
    session: aiohttp.ClientSession
    slack: AsyncWebClient
    deps: SlackDeps
    bolt: AsyncApp

    async def close(self, drain_timeout: float) -> None:
        """Finish in-flight work (up to `drain_timeout` seconds), then close the session and database."""
        await self.deps.tasks.drain(drain_timeout)
        await self.session.close()
        await self.db.close()


async def open_runtime(
    settings: Settings, *, clock: Callable[[], datetime] = utcnow, mode: str = "serve"
) -> Runtime:
    """Open the database and HTTP session and build the Bolt app; nothing is served yet."""
    if mode == "socket":
        settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", mode="socket")
    else:
        settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", mode="serve")
    db = await Database.open(settings.database_path, secret_keys=settings.secret_key)
    connector = aiohttp.TCPConnector(
        limit=max(100, settings.twilio_concurrency * 2), enable_cleanup_closed=True
    )
    session = aiohttp.ClientSession(connector=connector)
    twilio = TwilioClient(session, settings.twilio_api_url, timeout=settings.twilio_timeout)
    accounts, audit, outbox = AccountStore(db), AuditLog(db), Outbox(db)
    deps = SlackDeps(
        settings=settings,
        operations=Operations(
            twilio=twilio,
            accounts=accounts,
            audit=audit,
            outbox=outbox,
            concurrency=settings.twilio_concurrency,
        ),
        twilio=twilio,
        accounts=accounts,
        audit=audit,
        outbox=outbox,
        teams=TeamSettings(db),
        delivery=Delivery(session),
        permissions=Permissions(settings.admin_user_ids),
        tasks=TaskTracker(),
        clock=clock,
    )
    slack = web_client(settings.slack_bot_token or "", settings.slack_api_url, session)
    return Runtime(settings, db, session, slack, deps, build_app(deps, slack))


async def recover(runtime: Runtime) -> int:
    """Settle creates a killed process left pending, and post the cards it never posted. Never re-sends."""
    deps = runtime.deps
    done = 0
    for entry in await deps.outbox.unposted():
        try:
            await _recover_one(runtime, entry)
            done += 1
        except (TwilioError, SlackApiError, aiohttp.ClientError, TimeoutError) as err:
            # Left as it is: the next start tries again.
            log.warning("could not settle outbox row %s yet: %s", entry.id, type(err).__name__)
    return done


async def _recover_one(runtime: Runtime, entry: OutboxEntry) -> None:
    deps = runtime.deps
    message = None
    if entry.state == "pending":
        message = await deps.operations.reconcile(entry)
    elif entry.state == "sent" and entry.message_sid:
        found = await deps.accounts.credentials(entry.team_id, entry.account_label)
        if found:
            message = await deps.twilio.fetch(found[1], entry.message_sid)
    if message is not None:
        card = cards.message_card(
            message,
            requested_by=entry.user_id,
            account_label=entry.account_label or "default",
            operation="send" if entry.operation == "send" else "schedule",
            note="Posted after the bot restarted: the message had gone out before the restart.",
        )
    elif entry.state in {"pending", "unknown"}:
        card = cards.unknown_outcome_card(
            to=str(entry.request.get("to") or ""),
            body=str(entry.request.get("body") or ""),
            requested_by=entry.user_id,
            account_label=entry.account_label or "default",
            detail="The bot restarted while Twilio was handling this message, and Twilio has no "
            "record of it. Nothing was re-sent.",
        )
    else:
        await deps.outbox.mark_card_posted(entry.key)
        return
    await deps.delivery.post(runtime.slack, entry.channel_id or None, card, response_url=entry.response_url)
    await deps.outbox.mark_card_posted(entry.key)


async def slack_events(request: web.Request) -> web.StreamResponse:
    """Every Slack request (commands, interactivity, events): Bolt checks the signature and dispatches."""
    runtime = request.app[RUNTIME]
    bolt_request = await to_bolt_request(request)
    bolt_response = await runtime.bolt.async_dispatch(bolt_request)
    return await to_aiohttp_response(bolt_response)


async def healthz(request: web.Request) -> web.Response:
    """200 with JSON once the database is open; 503 while shutting down."""
    runtime = request.app.get(RUNTIME)
    if runtime is None or runtime.deps.tasks.closing:
        return web.json_response({"ok": False, "status": "stopping"}, status=503)
    await runtime.db.run(lambda db: db.execute("select 1").fetchone())
    return web.json_response({"ok": True, "database": "open", "in_flight": len(runtime.deps.tasks)})


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    drain_timeout: float = 25.0,
) -> web.Application:
    """The bot's aiohttp application; run it with `web.run_app` or an AppRunner."""
    app = web.Application(client_max_size=1024 * 1024)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        runtime = await open_runtime(settings, clock=clock)
        app[RUNTIME] = runtime
        runtime.deps.tasks.spawn(recover(runtime), name="recover outbox")
        yield
        await runtime.close(drain_timeout)

    async def stop_taking_work(app: web.Application) -> None:
        if RUNTIME in app:
            app[RUNTIME].deps.tasks.close()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(stop_taking_work)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    return app


async def start_server(
    settings: Settings, *, host: str, port: int, clock: Callable[[], datetime] = utcnow
) -> tuple[web.AppRunner, str]:
    """Start the bot on host:port (0 for any free port); returns the runner and its base URL."""
    runner = web.AppRunner(create_app(settings, clock=clock), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for sock in getattr(site._server, "sockets", None) or []:
        bound = sock.getsockname()[1]
        break
    return runner, f"http://{host}:{bound}"


def serve(settings: Settings) -> None:
    """Run the HTTP server until SIGTERM or Ctrl-C (aiohttp then runs the shut-down above)."""
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=lambda _: log.info("listening on http://%s:%s", settings.host, settings.port),
        shutdown_timeout=5.0,
        access_log=None,
    )


async def run_socket_mode(settings: Settings) -> None:
    """Socket Mode: the same Bolt app over a WebSocket (no public URL needed)."""
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    runtime = await open_runtime(settings, mode="socket")
    runtime.deps.tasks.spawn(recover(runtime), name="recover outbox")
    handler = AsyncSocketModeHandler(runtime.bolt, settings.slack_app_token or "")
    try:
        await handler.start_async()  # type: ignore[no-untyped-call]
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await runtime.close(25.0)

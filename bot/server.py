"""The aiohttp server: POST /slack/events into Bolt, GET /healthz, and the process's lifecycle.

Start-up opens the database and one HTTP session, builds the Bolt app and settles what a previous process
left unfinished. Shut-down stops taking work, lets running operations finish (bounded) and closes cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.internals import parse_body
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot import webhooks
from bot.inflight import InFlight
from bot.leases import Leases
from bot.media_links import MediaLinks
from bot.metrics import (
    CONTENT_TYPE,
    LagSampler,
    Metrics,
    SlackCallCounter,
    raw_request_labels,
    request_labels,
)
from bot.monitor import LoopMonitor
from bot.redelivery import Answer, RecentRequests
from bot.services import Services, Stores, build_services
from bot.settings import Settings
from bot.slack import commands, oauth, recovery
from bot.slack.app import build_app, web_client
from bot.slack.delivery import Delivery
from bot.slack.files import SlackFiles
from bot.slack.live import SlackCards, status_client
from bot.slack.logcontext import http_request
from bot.slack.payloads import shape_problem
from bot.slack.permissions import Permissions
from bot.slack.runner import SlackDeps
from bot.slack.threads import SlackThreads
from bot.twilio.client import TwilioClient
from bot.twilio.media import MediaFetcher
from storage.db import Database, DatabaseUnavailable

log = logging.getLogger(__name__)

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")
MONITOR: web.AppKey[LoopMonitor] = web.AppKey("loop_monitor")
LAG_SAMPLER: web.AppKey[LagSampler] = web.AppKey("lag_sampler")


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
    stores: Stores
    services: Services
    deps: SlackDeps
    bolt: AsyncApp
    # OAuth mode only: finds (and refreshes) each workspace's bot token.
    authorize: oauth.InstallationAuthorize | None = None
    recent: RecentRequests = field(default_factory=RecentRequests)
    metrics: Metrics = field(default_factory=Metrics)
    # PostgreSQL: renews this replica's leases and takes over those of replicas that died.
    tending: asyncio.Task[None] | None = None
    # Daily: the journal's done entries older than a week are deleted.
    housekeeping: asyncio.Task[None] | None = None

    def start_tending(self, *, recovered: bool = False) -> None:
        """Start the lease heartbeat and reconciler (PostgreSQL only; its first round runs at once, and
        is the start-up recovery unless that already ran: `recovered`)."""
        if self.services.operations.leases is not None and self.tending is None:
            self.tending = asyncio.get_running_loop().create_task(
                tend_leases(self, recovered=recovered), name="tend leases"
            )

    def start_housekeeping(self) -> None:
        """Prune the journal now and once a day (it holds what users asked, bodies included)."""
        if self.housekeeping is None:
            self.housekeeping = asyncio.get_running_loop().create_task(keep_house(self), name="housekeeping")

    async def team_client(self, team_id: str) -> AsyncWebClient | None:
        """The Slack client for a workspace: the bot's own one, or (OAuth mode) its installation's; None
        when that workspace has not installed the app."""
        if self.authorize is None:
            return self.slack
        found = await self.authorize.installation(team_id=team_id, enterprise_id=None)
        if found is None:
            return None
        return web_client(
            found.bot_token,
            self.settings.slack_api_url,
            self.session,
            observer=SlackCallCounter(self.metrics),
        )

    async def any_client(self, team_id: str) -> AsyncWebClient:
        """`team_client`, or the bot's tokenless client when the workspace has no installation any more:
        what is re-run for it then fails in words (its Twilio accounts went with the installation)."""
        return await self.team_client(team_id) or self.slack

    @property
    def any_clients(self) -> AsyncWebClient | Callable[[str], Awaitable[AsyncWebClient]]:
        """What re-runs accepted creates post with: the bot's client, or (OAuth mode) `any_client`."""
        return self.slack if self.authorize is None else self.any_client

    async def close(self, drain_timeout: float) -> None:
        """Finish in-flight work (up to `drain_timeout` seconds), then close the session and database."""
        await self.services.tasks.drain(drain_timeout)
        if self.housekeeping is not None:
            self.housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.housekeeping
        if self.tending is not None:
            # Renewals went on during the drain; one last round writes what waited for the database.
            self.tending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.tending
            leases = self.services.operations.leases
            if leases is not None and leases.unsaved:
                with contextlib.suppress(DatabaseUnavailable):
                    await leases.flush()
        self.services.operations.inflight.close()
        await self.session.close()
        await self.db.close()


async def open_runtime(
    settings: Settings, *, clock: Callable[[], datetime] = utcnow, mode: str = "serve"
) -> Runtime:
    """Open the database and HTTP session, build the services once and the Slack door on them."""
    if settings.oauth_mode:
        # Each workspace's token comes from its installation; the signing secret checks every request.
        settings.require("SLACK_SIGNING_SECRET", mode=f"{mode} in OAuth mode")
        if mode == "socket":
            settings.require("SLACK_APP_TOKEN", mode="socket")
    elif mode == "socket":
        settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", mode="socket")
    elif mode == "work":
        settings.require("SLACK_BOT_TOKEN", mode="work")
    else:
        settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", mode="serve")
    db = await Database.connect(
        settings.database_target, secret_keys=settings.secret_key, pool_size=settings.database_pool_size
    )
    connector = aiohttp.TCPConnector(
        limit=max(100, settings.twilio_concurrency * 2), enable_cleanup_closed=True
    )
    session = aiohttp.ClientSession(connector=connector)
    metrics = Metrics()
    twilio = TwilioClient(
        session,
        settings.twilio_api_url,
        timeout=settings.twilio_timeout,
        backoff_base=settings.twilio_backoff_base,
        observer=metrics,
    )
    stores = Stores.over(db)
    if db.engine == "postgresql":
        # File locks cannot span machines: the claim's lease in the shared database says who owns it.
        inflight, leases = InFlight(None), Leases(stores.outbox, lease_seconds=settings.outbox_lease_seconds)
        log.info("database: PostgreSQL, replica %s", leases.owner)
    else:
        inflight, leases = InFlight.beside(settings.database_path), None
    services = build_services(
        settings,
        stores,
        twilio,
        clock=clock,
        inflight=inflight,
        leases=leases,
        media=MediaFetcher(session, settings.twilio_api_url, timeout=settings.twilio_timeout),
        links=MediaLinks(db.box, settings.public_url, clock) if settings.public_url else None,
    )
    deps = SlackDeps.of(
        settings,
        services,
        delivery=Delivery(session, meter=metrics),
        permissions=Permissions(settings.admin_user_ids),
        meter=metrics,
    )
    metrics.watch(tasks=services.tasks.__len__, pending=stores.outbox.count_pending)
    observer = SlackCallCounter(metrics)
    if settings.oauth_mode:
        slack = web_client("", settings.slack_api_url, session, observer=observer)
        slack.token = None  # every request gets its workspace's token from the authorize step
        authorize = oauth.installation_authorize(settings, services.installs, slack)

        async def updates_for(team_id: str) -> AsyncWebClient | None:
            # A status callback comes without a Slack request: the card's workspace names the token.
            found = await authorize.installation(team_id=team_id, enterprise_id=None)
            if found is None:
                return None
            return status_client(found.bot_token, settings.slack_api_url, session, observer=observer)

        async def clients_for(team_id: str) -> AsyncWebClient | None:
            found = await authorize.installation(team_id=team_id, enterprise_id=None)
            if found is None:
                return None
            return web_client(found.bot_token, settings.slack_api_url, session, observer=observer)

        services.status.use_renderer(SlackCards(updates_for))
        # An inbound text or a reply's status comes without a Slack request too: the route's workspace
        # names the token, as the card's does above.
        services.conversations.attach(SlackThreads(clients_for, deps.delivery))
        bolt = build_app(deps, slack, authorize=authorize, bind_logs=mode == "socket")
        return Runtime(settings, db, session, slack, stores, services, deps, bolt, authorize, metrics=metrics)
    slack = web_client(settings.slack_bot_token or "", settings.slack_api_url, session, observer=observer)
    updates = status_client(
        settings.slack_bot_token or "", settings.slack_api_url, session, observer=observer
    )
    services.status.use_renderer(SlackCards(updates))
    services.conversations.attach(SlackThreads(slack, deps.delivery))
    bolt = build_app(deps, slack, bind_logs=mode == "socket")
    return Runtime(settings, db, session, slack, stores, services, deps, bolt, metrics=metrics)


async def recover(runtime: Runtime, *, live_cards: bool = True) -> int:
    """Settle creates a dead process left pending, post the cards it never posted (never re-sending), and
    run the creates it had accepted but not started (unless worker processes run them: WORKER_PROCESS).

    Then, with `live_cards` (the process that takes Twilio's status callbacks), bring live cards up to
    date: reports Twilio sent while the bot was down are not sent again.
    """
    services = runtime.services
    client = runtime.slack if runtime.authorize is None else runtime.team_client
    done = await services.operations.recover(recovery.poster(runtime.deps.delivery, client, services.status))
    if not runtime.settings.worker_process:
        await recovery.run_accepted(runtime.deps, runtime.any_clients)
    if live_cards:
        await services.status.refresh_open(services.operations.current)
    return done


HOUSEKEEPING_INTERVAL = 24 * 3600.0


async def keep_house(runtime: Runtime) -> None:
    """Until cancelled: prune the journal, then again every HOUSEKEEPING_INTERVAL seconds (a database
    that does not answer is tried again at the next round)."""
    while True:
        try:
            pruned = await runtime.services.intake.prune()
            if pruned > 0:
                log.info("forgot %d journal entries done more than a week ago", pruned)
        except DatabaseUnavailable as err:
            log.warning("journal not pruned: the database is not answering (%s)", err.detail)
        await asyncio.sleep(HOUSEKEEPING_INTERVAL)


async def tend_leases(runtime: Runtime, *, recovered: bool = False) -> None:
    """PostgreSQL, until cancelled: every RECONCILE_INTERVAL seconds renew this replica's leases, write
    what waited for the database, and take over (settle, post) what replicas that died left behind.

    A database that does not answer is logged and tried again next round: the bot keeps running.
    """
    operations = runtime.services.operations
    post = recovery.poster(runtime.deps.delivery, runtime.slack, runtime.services.status)
    first = not recovered
    while True:
        try:
            if first:
                # Start-up recovery: rows without an owner, stale leases, then the journal's accepted
                # creates and live cards, as on SQLite.
                await recover(runtime)
                first = False
            else:
                take = not runtime.services.tasks.closing
                await operations.tend_leases(post, take=take)
                if take and not runtime.settings.worker_process:
                    # What a replica that died had accepted but not yet claimed: older than a lease,
                    # so no live replica is still on its way to claiming it.
                    lease = timedelta(seconds=runtime.settings.outbox_lease_seconds)
                    await recovery.run_accepted(
                        runtime.deps,
                        runtime.any_clients,
                        accepted_before=runtime.services.clock() - lease,
                        note=recovery.TAKEN_OVER,
                    )
        except DatabaseUnavailable as err:
            log.warning("lease round skipped: the database is not answering (%s)", err.detail)
        except Exception:
            log.exception("lease round failed")
        await asyncio.sleep(runtime.settings.reconcile_interval)


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _page(bolt_response: BoltResponse, request: web.Request) -> web.Response:
    """An OAuth page or redirect as aiohttp sends it, with its state cookie.

    The cookie is Secure, so a browser sends it back over HTTPS only; on a plain-HTTP loopback address
    (the playground) that would break every install, so there it goes without the flag.
    """
    headers = bolt_response.first_headers_without_set_cookie()
    response = web.Response(status=bolt_response.status, body=bolt_response.body.encode("utf-8"))
    for name in ("Content-Type", "Location"):
        value = headers.get(name) or headers.get(name.lower())
        if value:
            response.headers[name] = value
    plain_loopback = not request.secure and (request.url.host or "") in _LOOPBACK
    for cookie in bolt_response.headers.get("set-cookie", []):
        response.headers.add("Set-Cookie", cookie.replace("; Secure", "") if plain_loopback else cookie)
    return response


async def slack_oauth(request: web.Request) -> web.StreamResponse:
    """GET /slack/install (the "Add to Slack" page) and GET /slack/oauth_redirect (Slack's answer).

    Every failure is a plain page saying what happened, with nothing stored: a bad, replayed or old
    state, a cancelled install, a code Slack refuses, Slack out of reach.
    """
    runtime = request.app[RUNTIME]
    flow = runtime.bolt.oauth_flow
    if flow is None:
        return web.Response(
            status=404,
            text="This bot serves one workspace (SLACK_BOT_TOKEN), so there is nothing to install here. "
            "Set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to let workspaces install it (README: "
            "'Serve many workspaces').",
        )
    bolt_request = await to_bolt_request(request)
    try:
        if request.path == oauth.INSTALL_PATH:
            answer = await flow.handle_installation(bolt_request)
        else:
            answer = await flow.handle_callback(bolt_request)
    except (aiohttp.ClientError, TimeoutError, SlackClientError) as err:
        log.warning("OAuth: could not reach Slack: %s", type(err).__name__)
        answer = oauth.failure_page("unreachable", 502)
    except Exception:
        log.exception("OAuth: the install could not be completed")
        answer = oauth.failure_page("storage_error", 503)
    return _page(answer, request)


def signed_by_slack(secret: str | None, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether `body` carries Slack's signature made with `secret` within the last 5 minutes."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not secret or not signature.isascii() or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    try:
        return SignatureVerifier(secret).is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError, UnicodeError):
        return False  # garbled headers or a body that is not UTF-8: not something Slack signed


def _answer_of(bolt_response: BoltResponse) -> Answer:
    headers = tuple(bolt_response.first_headers_without_set_cookie().items())
    return Answer(bolt_response.status, bolt_response.body.encode("utf-8"), headers)


async def _answer_handed_off(
    runtime: Runtime, body: bytes, content_type: str
) -> tuple[str, str, BoltResponse] | None:
    """A complete send or schedule with WORKER_PROCESS, written down and acked without Bolt's dispatch
    (`commands.answer_handed_off`): its metric labels and answer; None for Bolt to dispatch."""
    try:
        form = parse_body(body.decode("utf-8"), content_type)
    except (ValueError, RecursionError):
        return None  # Bolt parses it again and answers as it always has
    if not isinstance(form, dict):
        return None
    try:
        answer = await commands.answer_handed_off(runtime.deps, runtime.slack, form)
    except Exception:
        # Bolt runs the same listener next: the same key is written down once, or its error handler
        # logs and tells the user, as for any listener that fails.
        log.exception("the short way for a command failed; Bolt dispatches it")
        return None
    if answer is None:
        return None
    kind, name = request_labels(form)
    return kind, name, answer


async def slack_events(request: web.Request) -> web.StreamResponse:
    """Every Slack request (commands, interactivity, events), checked and then dispatched by Bolt; with
    WORKER_PROCESS a complete send or schedule is written down and acked here (`_answer_handed_off`).

    A request without a valid signature from the last 5 minutes gets 401 before anything is read out of
    it. A signed body seen before (a Slack retry, a double delivery) gets the first answer again.
    """
    runtime = request.app[RUNTIME]
    body = await request.read()
    if not signed_by_slack(runtime.settings.slack_signing_secret, body, request.headers):
        runtime.metrics.slack_request("unknown", "", 401)
        return web.json_response({"error": "invalid request signature"}, status=401)
    kind, name = "unknown", ""

    async def dispatch() -> Answer:
        nonlocal kind, name
        problem = shape_problem(body, request.content_type)
        if problem is not None:
            log.warning("refused a signed request that is not shaped like Slack's: %s", problem)
            return Answer(
                400, json.dumps({"error": problem}).encode(), (("Content-Type", "application/json"),)
            )
        if runtime.services.intake.hand_off and b"command=" in body:
            handed_off = await _answer_handed_off(runtime, body, request.content_type)
            if handed_off is not None:
                kind, name, bolt_response = handed_off
                return _answer_of(bolt_response)
        bolt_request = await to_bolt_request(request)
        kind, name = request_labels(bolt_request.body)
        bolt_response = await runtime.bolt.async_dispatch(bolt_request)
        if bolt_response.status == 404:
            # Bolt's own answer is a bare "unhandled request"; say it in words.
            sentence = "This app has nothing that handles this kind of Slack request, so nothing was done."
            return Answer(
                404, json.dumps({"error": sentence}).encode(), (("Content-Type", "application/json"),)
            )
        return _answer_of(bolt_response)

    with http_request(body, request.content_type):
        with runtime.services.tasks.foreground():
            answer, first = await runtime.recent.once(body, dispatch)
        if not first:
            kind, name = raw_request_labels(body, request.content_type)
            retry = request.headers.get("X-Slack-Retry-Num")
            log.info("repeated Slack request answered from the first delivery (retry %s)", retry or "-")
        runtime.metrics.slack_request(kind, name, answer.status, repeated=not first)
    return web.Response(status=answer.status, body=answer.body, headers=dict(answer.headers))


async def healthz(request: web.Request) -> web.Response:
    """200 with JSON naming the engine while the database answers; 503 when it does not, or while stopping.

    `?lag=1` adds the event-loop lag figures when BOT_LOOP_MONITOR=1 (null otherwise); `&after=N` limits
    them to the samples taken after the Nth (`samples` in an earlier answer), to measure one period.
    """
    runtime = request.app.get(RUNTIME)
    if runtime is None or runtime.services.tasks.closing:
        return web.json_response({"ok": False, "status": "stopping"}, status=503)
    engine = runtime.db.engine
    if not await runtime.db.ping():
        body = {"ok": False, "status": "database not answering", "engine": engine, "database": "down"}
        return web.json_response(body, status=503)
    body = {"ok": True, "engine": engine, "database": "open", "in_flight": len(runtime.services.tasks)}
    if request.query.get("lag") == "1":
        monitor = request.app.get(MONITOR)
        after = request.query.get("after", "0")
        body["loop_lag"] = monitor.stats(int(after) if after.isdigit() else 0) if monitor else None
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    """The process's metrics in Prometheus' text format (503 until the runtime is open)."""
    runtime = request.app.get(RUNTIME)
    if runtime is None:
        return web.json_response({"ok": False, "status": "starting"}, status=503)
    return web.Response(body=await runtime.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    drain_timeout: float | None = None,
) -> web.Application:
    """The bot's aiohttp application; run it with `web.run_app` or an AppRunner.

    `drain_timeout` (default: settings.shutdown_timeout) bounds how long shut-down waits for operations
    already running; what is still running then is cancelled and left pending for the next start.
    """
    drain = settings.shutdown_timeout if drain_timeout is None else drain_timeout
    app = web.Application(client_max_size=1024 * 1024)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        runtime = await open_runtime(settings, clock=clock)
        app[RUNTIME] = runtime
        webhooks.use_services(app, runtime.services)
        _mount_conversations(app, runtime)
        if settings.loop_monitor:
            app[MONITOR] = LoopMonitor()
            app[MONITOR].start()
        app[LAG_SAMPLER] = LagSampler(runtime.metrics.loop_lag)
        app[LAG_SAMPLER].start()
        # Before the first webhook: texts a stopped process stored but did not show go first, in order.
        await runtime.services.conversations.recover()
        if runtime.services.operations.leases is not None:
            runtime.start_tending()  # its first round is the start-up recovery
        else:
            runtime.services.tasks.spawn(recover(runtime), name="recover outbox")
        runtime.start_housekeeping()
        yield
        await runtime.close(drain)
        if MONITOR in app:
            await app[MONITOR].stop()
        await app[LAG_SAMPLER].stop()

    async def stop_taking_work(app: web.Application) -> None:
        if RUNTIME in app:
            tasks = app[RUNTIME].services.tasks
            tasks.close()
            log.info("shutting down: no new work; waiting up to %g s for %d running", drain, len(tasks))

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(stop_taking_work)
    app.router.add_post("/slack/events", slack_events)
    add_oauth_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    webhooks.add_routes(app, settings.public_url)
    return app


def add_oauth_routes(app: web.Application) -> None:
    """The two OAuth pages (they answer 404 with a sentence in single-workspace mode)."""
    app.router.add_get(oauth.INSTALL_PATH, slack_oauth)
    app.router.add_get(oauth.REDIRECT_PATH, slack_oauth)


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


async def _freeze_startup_objects(app: web.Application) -> None:
    # Everything built so far (modules, the Bolt app) lives as long as the process: keep it out of the
    # cyclic GC's full collections, which otherwise rescan it all and pause the loop for tens of ms.
    gc.collect()
    gc.freeze()


def _mount_conversations(app: web.Application, runtime: Runtime) -> None:
    """Give the Twilio door the media links replies' files go out through, when there are any."""
    links = runtime.services.conversations.links
    if links is not None:
        settings = runtime.settings
        authorize = runtime.authorize
        token: str | Callable[[str], Awaitable[str | None]] = settings.slack_bot_token or ""
        if authorize is not None:

            async def token_for(team_id: str) -> str | None:
                # A file of a reply is read with its own workspace's token.
                found = await authorize.installation(team_id=team_id, enterprise_id=None)
                return None if found is None else found.bot_token

            token = token_for
        files = SlackFiles(runtime.session, token, settings.slack_api_url)
        app[webhooks.MEDIA] = (links, files)


def serve(settings: Settings) -> None:
    """Run the HTTP server until SIGTERM or Ctrl-C (aiohttp then runs the shut-down above)."""
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)  # after the runtime is opened (cleanup_ctx runs first)
    web.run_app(
        app,
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
    await runtime.services.conversations.recover()
    if runtime.services.operations.leases is not None:
        runtime.start_tending()
    else:
        runtime.services.tasks.spawn(recover(runtime), name="recover outbox")
    runtime.start_housekeeping()
    handler = AsyncSocketModeHandler(runtime.bolt, settings.slack_app_token or "")
    # SIGTERM/SIGINT end the wait below, so shut-down runs as for `serve`: stop taking work, then drain.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def connect() -> None:  # slack_sdk retries until it connects; a signal must still stop it
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("connected to Slack over Socket Mode")

    connecting = asyncio.ensure_future(connect())
    listener = await _socket_mode_http(runtime) if settings.public_url or settings.oauth_mode else None
    try:
        await stop.wait()
    finally:
        if listener is not None:
            await listener.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        connecting.cancel()
        runtime.services.tasks.close()
        log.info("shutting down: no new work; waiting up to %g s", settings.shutdown_timeout)
        await handler.close_async()  # type: ignore[no-untyped-call]
        await runtime.close(settings.shutdown_timeout)


# How often a worker process looks for creates the web processes accepted: at most this much is added to
# the time until a card (a read of the open entries' keys, which their partial index keeps cheap).
WORKER_POLL_SECONDS = 0.05


async def run_worker(settings: Settings) -> None:
    """`python -m bot work` (WORKER_PROCESS=1): run the sends and schedules `serve` processes wrote down,
    and post their cards, until SIGTERM or Ctrl-C; /healthz and /metrics on HOST:PORT.

    Start-up first settles what a stopped process left (as `serve` does); what was accepted before this
    worker started carries the "delayed by a bot restart" note, anything older than RECOVERY_MAX_AGE is
    reported as not sent. On SQLite, several workers share the entries through the same file locks as
    the outbox; on PostgreSQL run one (two would each try every entry; the outbox still lets only one
    reach Twilio and post its card).
    """
    settings = dataclasses.replace(settings, worker_process=True)
    runtime = await open_runtime(settings, mode="work")
    started = runtime.services.clock()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    if settings.loop_monitor:
        app[MONITOR] = LoopMonitor()
        app[MONITOR].start()
    listener = web.AppRunner(app, handle_signals=False, access_log=None)
    await listener.setup()
    try:
        # Before the first round: the outbox's recovery owns the creates a stopped worker claimed, and
        # a round running beside it would hold their keys while it looks at them.
        await recover(runtime, live_cards=False)  # the web process takes the status callbacks
        runtime.start_tending(recovered=True)
        runtime.start_housekeeping()
        await web.TCPSite(listener, settings.host, settings.port).start()
        log.info("worker: health on http://%s:%s/healthz", settings.host, settings.port)
        while not stop.is_set():
            try:
                await recovery.run_handed_off(runtime.deps, runtime.any_clients, accepted_before=started)
            except DatabaseUnavailable as err:
                log.warning("worker round skipped: the database is not answering (%s)", err.detail)
            except Exception:
                log.exception("worker round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WORKER_POLL_SECONDS)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        runtime.services.tasks.close()
        log.info("shutting down: no new work; waiting up to %g s", settings.shutdown_timeout)
        await listener.cleanup()
        await runtime.close(settings.shutdown_timeout)
        if MONITOR in app:
            await app[MONITOR].stop()


async def _socket_mode_http(runtime: Runtime) -> web.AppRunner:
    """Socket Mode still needs HTTP on HOST:PORT for what Slack's socket does not carry: Twilio's webhooks
    (texts, statuses) and media fetches when PUBLIC_URL is set, and the install and redirect pages a
    browser opens in OAuth mode. One listener serves both, with /healthz."""
    settings = runtime.settings
    app = web.Application(client_max_size=1024 * 1024)
    app[RUNTIME] = runtime
    if settings.public_url:
        webhooks.add_routes(app, settings.public_url)
        webhooks.use_services(app, runtime.services)
        _mount_conversations(app, runtime)
    if settings.oauth_mode:
        add_oauth_routes(app)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    if settings.oauth_mode:
        log.info("install pages on http://%s:%s%s", settings.host, settings.port, oauth.INSTALL_PATH)
    if settings.public_url:
        log.info("listening for Twilio's webhooks on http://%s:%s", settings.host, settings.port)
    return runner

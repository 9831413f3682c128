"""`TwilioSimulator`: accounts, messages, numbers, webhooks to the bot, faults and controls on one server."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDictProxy

from bot.sandbox.twilio.accounts import _basic_credentials
from bot.sandbox.twilio.callbacks import CallbackFault, StatusCallbacks
from bot.sandbox.twilio.control import ControlRoutes, fault_routes, sim_routes
from bot.sandbox.twilio.errors import TwilioApiError
from bot.sandbox.twilio.faults import Fault, _drop_connection
from bot.sandbox.twilio.formats import _ACCOUNT_PATH, _MESSAGE_PATH, _MESSAGES_PATH
from bot.sandbox.twilio.inbound import InboundTexts
from bot.sandbox.twilio.recording import RecordedRequest


class TwilioSimulator(ControlRoutes, InboundTexts, StatusCallbacks):
    """A Twilio API server on loopback that calls the bot back, with fault injection and a full record."""

    # ----- lifecycle -------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        """Listen on `host:port` (0 picks a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("TwilioSimulator is already running")
        app = web.Application()
        app.add_routes(sim_routes(self))
        app.add_routes(fault_routes("/_sim/faults", self._faults, Fault))
        app.add_routes(fault_routes("/_sim/callbacks/faults", self.callback_faults, CallbackFault))
        app.router.add_route("*", "/{tail:.*}", self._handle_api)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        await self._start_cdn()
        self._stopping.clear()
        self._session = aiohttp.ClientSession()
        self.clock.subscribe(self._wake_callbacks)
        self._callback_loop_task = asyncio.create_task(self._callback_loop())
        return self.url

    async def stop(self) -> None:
        """Release held requests, stop calling the bot back, and shut the server down."""
        self.release_held()
        self._stopping.set()
        self.clock.unsubscribe(self._wake_callbacks)
        if self._callback_loop_task is not None:
            self._callback_loop_task.cancel()
            await asyncio.gather(self._callback_loop_task, return_exceptions=True)
            self._callback_loop_task = None
        pending = [*self._callback_tasks, *self._inbound_tasks]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        await self._stop_cdn()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> TwilioSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ----- the API ---------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        credentials = _basic_credentials(request)
        authorization = "Authorization" in request.headers
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=list(request.query.items()),
            form=[(k, v) for k, v in form.items() if isinstance(v, str)],
            username=credentials[0] if credentials else None,
            time=self.clock.now(),
        )
        self.requests.append(record)
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "latency":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "status":
                record.status = fault.status
                return self._fault_response(fault)
            elif fault.kind == "reset":
                return _drop_connection(request)
        try:
            response = self._media_route(request.method, request.path, credentials, authorization)
            response = response or self._dispatch(request, form, credentials, record)
        except TwilioApiError as err:
            response = err.response()
        record.status = response.status
        if fault is not None and fault.kind == "apply_then_reset":
            return _drop_connection(request)
        if fault is not None and fault.kind == "apply_then_hold":
            await self._hold()
        return response

    def _dispatch(
        self,
        request: web.Request,
        form: MultiDictProxy[Any],
        credentials: tuple[str, str] | None,
        record: RecordedRequest,
    ) -> web.Response:
        method, path = request.method, request.path
        now = self.clock.now()
        if match := _MESSAGES_PATH.fullmatch(path):
            account = self._authenticate(credentials, match["account"])
            if method == "POST":
                message = self._create(account, form, now)
                record.message_sid = message.sid
                self._track_callbacks(message)
                return web.json_response(message.to_json(now), status=201)
            if method == "GET":
                return web.json_response(self._list(account, request.query, now))
        elif match := _MESSAGE_PATH.fullmatch(path):
            account = self._authenticate(credentials, match["account"])
            message = self._find(account, match["sid"], path)
            record.message_sid = message.sid
            if method == "GET":
                return web.json_response(message.to_json(now))
            if method == "POST":
                self._update(message, form, now)
                self._track_callbacks(message)
                return web.json_response(message.to_json(now))
            if method == "DELETE":
                self._delete(message, now)
                return web.Response(status=204)
        elif match := _ACCOUNT_PATH.fullmatch(path):
            account = self._authenticate(credentials, match["account"])
            if method == "GET":
                return web.json_response(self._account_json(account))
        elif (found := self._phone_numbers_route(method, path, request.query, form, credentials)) is not None:
            return web.json_response(found)
        else:
            raise TwilioApiError(20404, f"The requested resource {path} was not found")
        raise TwilioApiError(20004, f"Method {method} not allowed on {path}")

"""`TwilioSimulator`: accounts, the Messages API, fault injection and the control routes on one server."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from bot.sandbox.twilio.accounts import _basic_credentials
from bot.sandbox.twilio.control import ControlRoutes
from bot.sandbox.twilio.errors import TwilioApiError
from bot.sandbox.twilio.faults import _drop_connection
from bot.sandbox.twilio.formats import _ACCOUNT_PATH, _MESSAGE_PATH, _MESSAGES_PATH
from bot.sandbox.twilio.messages import MessagesApi
from bot.sandbox.twilio.recording import RecordedRequest


class TwilioSimulator(ControlRoutes, MessagesApi):
    """A Twilio Messages API server on loopback with fault injection and a record of every request."""

    # ----- lifecycle -------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        """Listen on `host:port` (0 picks a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("TwilioSimulator is already running")
        app = web.Application()
        self._add_control_routes(app)
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
        return self.url

    async def stop(self) -> None:
        """Release held requests and shut the server down."""
        self.release_held()
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

    @property
    def port(self) -> int:
        """The port it listens on (after `start`)."""
        if self._port is None:
            raise RuntimeError("TwilioSimulator has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:43210` (after `start`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ----- the API ---------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        credentials = _basic_credentials(request)
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
            response = self._dispatch(request, form, credentials, record)
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
                return web.json_response(message.to_json(now))
            if method == "DELETE":
                self._delete(message, now)
                return web.Response(status=204)
        elif match := _ACCOUNT_PATH.fullmatch(path):
            account = self._authenticate(credentials, match["account"])
            if method == "GET":
                return web.json_response(self._account_json(account))
        else:
            raise TwilioApiError(20404, f"The requested resource {path} was not found")
        raise TwilioApiError(20004, f"Method {method} not allowed on {path}")

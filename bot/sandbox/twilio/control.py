"""The control routes under ``/_sim/``: the simulator's test controls as JSON, for out-of-process use.

Each part of the simulator marks its handlers with `sim_route`, beside the code that answers them;
`sim_routes` puts them all on the server. No auth: the simulator only listens on loopback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from aiohttp import web

from bot.sandbox.twilio.accounts import Accounts
from bot.sandbox.twilio.fault_queue import F, FaultQueue
from bot.sandbox.twilio.faults import FaultInjection

_Handler = TypeVar("_Handler", bound=Callable[[Any, web.Request], Awaitable[web.StreamResponse]])
_ROUTES: list[tuple[str, str, str]] = []  # (HTTP method, path, handler name), in the order defined


def sim_route(method: str, path: str) -> Callable[[_Handler], _Handler]:
    """Serve the decorated handler method at ``method path`` (see `sim_routes`)."""

    def mark(handler: _Handler) -> _Handler:
        _ROUTES.append((method, path, handler.__name__))
        return handler

    return mark


def sim_routes(sim: object) -> list[web.RouteDef]:
    """Every route marked with `sim_route`, answered by `sim`'s handlers."""
    return [web.route(method, path, getattr(sim, name)) for method, path, name in _ROUTES]


def fault_routes(path: str, queue: FaultQueue[F], kind: Callable[..., F]) -> list[web.RouteDef]:
    """``GET path`` lists `queue`'s faults, ``POST`` queues one from a JSON body, ``DELETE`` clears them."""

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response(queue.to_json())

    async def inject(request: web.Request) -> web.Response:
        data = await _json_object(request)
        with _bad_control_on(TypeError, ValueError):
            fault = kind(**data)
        queue.inject(fault)
        return web.json_response(dataclasses.asdict(fault), status=201)

    async def clear(request: web.Request) -> web.Response:
        queue.clear()
        return web.json_response({"faults": 0})

    return [web.get(path, list_faults), web.post(path, inject), web.delete(path, clear)]


class ControlRoutes(FaultInjection, Accounts):
    """``/_sim/``: state, held requests, the clock, the request log, messages and accounts."""

    @sim_route("GET", "/_sim/")
    async def _sim_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "now": self.clock.now().isoformat(),
                "held": self._held,
                "faults": self._faults.to_json(),
                "requests": len(self.requests),
                "messages": len(self.messages),
                "accounts": sorted(self._accounts),
                "webhooks": len(self.webhooks),
                "held_callbacks": len(self._held_callbacks),
            }
        )

    @sim_route("POST", "/_sim/release")
    async def _sim_release(self, request: web.Request) -> web.Response:
        return web.json_response({"released": self.release_held()})

    @sim_route("POST", "/_sim/advance")
    async def _sim_advance(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        seconds = data.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise _bad_control("seconds must be a number >= 0")
        now = self.clock.advance(timedelta(seconds=seconds))
        return web.json_response({"now": now.isoformat()})

    @sim_route("GET", "/_sim/requests")
    async def _sim_requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.to_json() for r in self.requests])

    @sim_route("DELETE", "/_sim/requests")
    async def _sim_clear_requests(self, request: web.Request) -> web.Response:
        self.requests.clear()
        return web.json_response({"requests": 0})

    @sim_route("GET", "/_sim/messages")
    async def _sim_messages(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        return web.json_response([m.to_json(now) for m in self.messages.values()])

    @sim_route("POST", "/_sim/accounts")
    async def _sim_add_account(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        with _bad_control_on(TypeError, ValueError):
            self.add_account(**data)
        return web.json_response({"sid": data["sid"]}, status=201)


def _bad_control(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


@contextlib.contextmanager
def _bad_control_on(*errors: type[Exception]) -> Iterator[None]:
    """Answer 400 with the error's own words when a control asks for what the simulator refuses."""
    try:
        yield
    except errors as err:
        raise _bad_control(getattr(err, "message", str(err))) from err


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as err:
        raise _bad_control("the body must be a JSON object") from err
    if not isinstance(data, dict):
        raise _bad_control("the body must be a JSON object")
    return data

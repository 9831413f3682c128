"""The control routes under ``/_sim/``: the simulator's test controls as JSON, for out-of-process use.

No auth: the simulator only listens on loopback.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.sandbox.twilio.accounts import Accounts
from bot.sandbox.twilio.fault_queue import F, FaultQueue
from bot.sandbox.twilio.faults import Fault, FaultInjection


class ControlRoutes(FaultInjection, Accounts):
    """``/_sim/``: state, faults, held requests, the clock, the request log, messages and accounts."""

    def _add_control_routes(self, app: web.Application) -> None:
        app.router.add_get("/_sim/", self._sim_state)
        app.router.add_get("/_sim/faults", self._sim_list_faults)
        app.router.add_post("/_sim/faults", self._sim_inject)
        app.router.add_delete("/_sim/faults", self._sim_clear_faults)
        app.router.add_post("/_sim/release", self._sim_release)
        app.router.add_post("/_sim/advance", self._sim_advance)
        app.router.add_get("/_sim/requests", self._sim_requests)
        app.router.add_delete("/_sim/requests", self._sim_clear_requests)
        app.router.add_get("/_sim/messages", self._sim_messages)
        app.router.add_post("/_sim/accounts", self._sim_add_account)

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

    async def _sim_list_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self._faults.to_json())

    async def _sim_inject(self, request: web.Request) -> web.Response:
        return await _inject_fault(request, self._faults, Fault)

    async def _sim_clear_faults(self, request: web.Request) -> web.Response:
        return _clear_faults(self._faults)

    async def _sim_release(self, request: web.Request) -> web.Response:
        return web.json_response({"released": self.release_held()})

    async def _sim_advance(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        seconds = data.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise _bad_control("seconds must be a number >= 0")
        now = self.clock.advance(timedelta(seconds=seconds))
        return web.json_response({"now": now.isoformat()})

    async def _sim_requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.to_json() for r in self.requests])

    async def _sim_clear_requests(self, request: web.Request) -> web.Response:
        self.requests.clear()
        return web.json_response({"requests": 0})

    async def _sim_messages(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        return web.json_response([m.to_json(now) for m in self.messages.values()])

    async def _sim_add_account(self, request: web.Request) -> web.Response:
        data = await _json_object(request)
        try:
            self.add_account(**data)
        except (TypeError, ValueError) as err:
            raise _bad_control(str(err)) from err
        return web.json_response({"sid": data["sid"]}, status=201)


def _bad_control(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as err:
        raise _bad_control("the body must be a JSON object") from err
    if not isinstance(data, dict):
        raise _bad_control("the body must be a JSON object")
    return data


async def _inject_fault(request: web.Request, queue: FaultQueue[F], kind: Callable[..., F]) -> web.Response:
    """Queue the fault the JSON body describes; answer it back, or say what is wrong with it."""
    data = await _json_object(request)
    try:
        fault = kind(**data)
    except (TypeError, ValueError) as err:
        raise _bad_control(str(err)) from err
    queue.inject(fault)
    return web.json_response(dataclasses.asdict(fault), status=201)


def _clear_faults(queue: FaultQueue[Any]) -> web.Response:
    queue.clear()
    return web.json_response({"faults": 0})

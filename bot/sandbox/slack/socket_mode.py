"""Socket Mode: the WebSocket ``apps.connections.open`` hands out, and envelopes sent over it to the bot."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time

import aiohttp
from aiohttp import web

from bot.sandbox.slack.records import Json, SlackResponse
from bot.sandbox.slack.state import SlackState
from bot.sandbox.slack.workspace import API_APP_ID


class SocketMode(SlackState):
    """Serves ``/socket/{ticket}`` (``hello``, then envelopes; acks land in ``socket_acks``)."""

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if ticket not in self._socket_tickets:
            raise web.HTTPUnauthorized(text="unknown or used Socket Mode URL")
        self._socket_tickets.discard(ticket)  # each URL from apps.connections.open is good once
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connections += 1
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": sum(not w.closed for w in self._sockets),
                    "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": API_APP_ID},
                }
            )
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    ack = json.loads(msg.data)
                except ValueError:
                    self._problem(f"socket: the bot sent something that is not JSON: {msg.data[:200]!r}")
                    continue
                if not isinstance(ack, dict) or not ack.get("envelope_id"):
                    self._problem(f"socket: the bot sent a message without envelope_id: {msg.data[:200]!r}")
                    continue
                self.socket_acks.append(ack)
                waiter = self._pending_acks.pop(str(ack["envelope_id"]), None)
                if waiter is None:
                    self._problem(f"socket: ack for an unknown or late envelope {ack['envelope_id']}")
                elif not waiter.done():
                    waiter.set_result(ack)
        finally:
            with contextlib.suppress(ValueError):
                self._sockets.remove(ws)
        return ws

    async def _deliver_socket(
        self, kind: str, payload: Json, *, retry_attempt: int | None = None, retry_reason: str = ""
    ) -> tuple[SlackResponse, bytes]:
        """Send one envelope over the newest connection and wait for its ack (``ack_timeout``)."""
        sockets = [ws for ws in self._sockets if not ws.closed]
        started = time.monotonic()
        if not sockets:
            return SlackResponse(0, "", {}, "dispatch_failed"), b""
        envelope_id = secrets.token_hex(16)
        kinds = {"slash_command": "slash_commands", "event_callback": "events_api"}
        envelope: Json = {
            "envelope_id": envelope_id,
            "type": kinds.get(kind, "interactive"),
            "accepts_response_payload": kind != "event_callback",
            "payload": payload,
        }
        if retry_attempt is not None:
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        raw = json.dumps(envelope)
        waiter: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = waiter
        try:
            await sockets[-1].send_str(raw)
            ack = await asyncio.wait_for(waiter, self.ack_timeout)
        except TimeoutError:
            return SlackResponse(0, "", {}, "operation_timeout", time.monotonic() - started), raw.encode()
        except ConnectionError:
            return SlackResponse(0, "", {}, "dispatch_failed", time.monotonic() - started), raw.encode()
        finally:
            self._pending_acks.pop(envelope_id, None)
        answer = ack.get("payload")
        body = json.dumps(answer) if answer else ""
        headers = {"Content-Type": "application/json"} if body else {}
        return SlackResponse(200, body, headers, None, time.monotonic() - started), raw.encode()

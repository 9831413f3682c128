"""Acting as Twilio and as Slack's Events API against a running stack, for the conversation tests.

Texts are signed with twilio-python's own RequestValidator (the oracle for Twilio's scheme); events are
signed as Slack signs them. Until the simulators deliver these themselves, the tests send them here.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from harness import Stack
from twilio.request_validator import RequestValidator

from bot.sandbox.slack import ADMIN_ID, OPS_ID, TEAM_ID
from bot.sandbox.twilio import DEFAULT_FROM, SANDBOX_ACCOUNT_SID

OURS = DEFAULT_FROM
PHONE = "+15550001111"
_sids = itertools.count(1)
_events = itertools.count(1)


def message_sid() -> str:
    """A fresh, well-formed inbound MessageSid."""
    return f"SM{next(_sids):032x}"


def inbound_form(
    body: str, *, from_: str = PHONE, to: str = OURS, sid: str | None = None, **extra: str
) -> dict[str, str]:
    """Twilio's messaging webhook form for one text."""
    form = {
        "MessageSid": sid or message_sid(),
        "AccountSid": SANDBOX_ACCOUNT_SID,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
    }
    form.update(extra)
    return form


async def post_form(
    stack: Stack, form: Mapping[str, str], *, token: str | None = None, signature: str | None = None
) -> tuple[int, str, str]:
    """POST `form` to /twilio/inbound signed with `token` (the stack's by default); status, type, body.

    The signature covers PUBLIC_URL's address when the bot has one, as Twilio's would.
    """
    url = f"{stack.bot_url}/twilio/inbound"
    signed_url = f"{stack.settings.public_url or stack.bot_url}/twilio/inbound"
    signed = RequestValidator(token or stack.twilio_token).compute_signature(signed_url, dict(form))
    headers = {"X-Twilio-Signature": signed if signature is None else signature}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=dict(form), headers=headers) as resp,
    ):
        return resp.status, resp.content_type, await resp.text()


async def text_in(stack: Stack, body: str, **fields: str) -> str:
    """A person texts our number; waits until the bot has shown it. Returns its MessageSid."""
    form = inbound_form(body, **fields)
    status, _, _ = await post_form(stack, form)
    assert status == 200
    await stack.settle()
    return form["MessageSid"]


async def post_event(
    stack: Stack,
    event: Mapping[str, Any],
    *,
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    retry: int = 0,
    wait: bool = True,
) -> int:
    """Deliver an Events API `event_callback`, signed as Slack signs it; waits for the bot."""
    payload = {
        "token": "unused",
        "team_id": team_id,
        "api_app_id": "A0PLAYGRND",
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_events):08d}",
        "event_time": int(time.time()),
        "event": dict(event),
    }
    body = json.dumps(payload).encode()
    stamp = int(time.time())
    digest = hmac.new(
        stack.signing_secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256
    ).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Signature": f"v0={digest}",
        "X-Slack-Request-Timestamp": str(stamp),
    }
    if retry:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{stack.bot_url}/slack/events", data=body, headers=headers) as resp,
    ):
        status = resp.status
    if wait:
        await stack.settle()
    return status


_ts = itertools.count(1)


def message_event(
    text: str, *, thread_ts: str | None, channel: str = OPS_ID, user: str = ADMIN_ID, **extra: Any
) -> dict[str, Any]:
    """A person's message in a channel (a reply when `thread_ts` is given)."""
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": f"1800000000.{next(_ts):06d}",
        "channel_type": "channel",
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


async def route_ops(stack: Stack) -> None:
    """Route our number to #ops as the admin."""
    await stack.command(f"route {OURS} <#{OPS_ID}|ops>")


def thread(stack: Stack, root_ts: str, channel: str = OPS_ID) -> list[dict[str, Any]]:
    """The bot's messages in one thread, oldest first (the root card not included)."""
    return [m for m in stack.cards(channel) if m.get("thread_ts") == root_ts and m.get("ts") != root_ts]


def roots(stack: Stack, channel: str = OPS_ID) -> list[dict[str, Any]]:
    """The conversations' root cards in a channel, oldest first."""
    return [m for m in stack.cards(channel) if not m.get("thread_ts") or m.get("thread_ts") == m.get("ts")]


def creates(stack: Stack) -> list[dict[str, str]]:
    """The Messages creates Twilio received, as forms."""
    return [
        dict(r.form)
        for r in stack.twilio.requests
        if r.method == "POST" and r.path.endswith("/Messages.json")
    ]

"""Slack's request signing, written once for tests and benchmarks: the signature and a signed POST.

Written out by hand rather than through slack_sdk, so the bot's check is tested against the documented
algorithm (`v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}`), not against the library it uses itself.
Only the standard library and aiohttp: `benchmarks` imports it as `tests.signing`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

import aiohttp


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """Slack's `X-Slack-Signature` for `body` at `timestamp`."""
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The two headers Slack signs a request with."""
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature(secret, timestamp, body),
    }


async def post(
    url: str,
    body: bytes,
    *,
    secret: str | None,
    timestamp: int | None = None,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> tuple[int, str]:
    """POST `body` to the bot's /slack/events, signed with `secret` (None: unsigned); `headers` win."""
    stamp = int(time.time()) if timestamp is None else timestamp
    sent = {"Content-Type": content_type}
    if secret is not None:
        sent.update(signed_headers(secret, stamp, body))
    sent.update(headers or {})
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/slack/events", data=body, headers=sent) as resp,
    ):
        return resp.status, await resp.text()

"""Signed `/twilio send` slash commands, built before a run so the load generator only replays bytes.

Each request carries a unique token in its SMS body (`bench-<run>-<index>`), which the Twilio create and the
result card repeat, so the runner can match both to the request. Slack's signature covers the timestamp,
and the bot accepts it for five minutes: build the requests just before each run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from tests.signing import signature

TO_NUMBER = "+15551230000"
CHANNELS = 25
"""Commands come from this many channels: Slack takes about one message a second per channel, so traffic
of hundreds of sends a second is spread over many channels, and the bot posts to each in turn."""
TOKEN = re.compile(r"bench-([a-z0-9]+)-(\d{6})")


def token(run: str, index: int) -> str:
    """The unique text that identifies request `index` of `run` in Twilio's create and in the card."""
    if not re.fullmatch(r"[a-z0-9]+", run):
        raise ValueError("a run label is lower-case letters and digits")
    return f"bench-{run}-{index:06d}"


def run_of(tok: str) -> str:
    """The run label in a `token`."""
    return tok.rsplit("-", 1)[0].removeprefix("bench-")


def channel_ids(count: int = CHANNELS) -> list[str]:
    """The public channels the benchmark's Slack simulator adds (the bot is a member of each)."""
    return [f"C0BENCH{i:03d}" for i in range(count)]


def tokens_in(text: str) -> list[str]:
    """Every request token found in `text` (a card's JSON, an SMS body)."""
    return [m.group(0) for m in TOKEN.finditer(text)]


@dataclass(frozen=True)
class SignedRequest:
    """One slash command as Slack would POST it: form body and headers, signed."""

    index: int
    token: str
    body: bytes
    headers: tuple[tuple[str, str], ...]

    def raw(self, host: str, path: str = "/slack/events") -> bytes:
        """The request as HTTP/1.1 bytes on the wire (keep-alive), for replaying from a socket."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def send_command(
    run: str,
    index: int,
    *,
    secret: str,
    timestamp: int,
    team_id: str,
    channel_id: str,
    user_id: str,
    response_url: str,
    option: str = "",
) -> SignedRequest:
    """`/twilio send +15551230000 bench-<run>-<index>` from `user_id` in `channel_id`, signed.

    An `option` the bot does not know (`--dry-run`) makes a send it refuses in its ack, doing nothing else.
    """
    tok = token(run, index)
    fields = {
        "token": "bench-verification-token",
        "team_id": team_id,
        "team_domain": "bench",
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": "bench",
        "command": "/twilio",
        "text": f"send {TO_NUMBER} {tok} {option}".rstrip(),
        "api_app_id": "A0BENCH",
        "is_enterprise_install": "false",
        "response_url": response_url,
        # A slash command's trigger_id is unique per invocation; the bot keys its outbox on it.
        "trigger_id": f"{index}.{run}.bench",
    }
    body = urlencode(fields).encode()
    headers = (
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)"),
        ("X-Slack-Request-Timestamp", str(timestamp)),
        ("X-Slack-Signature", signature(secret, timestamp, body)),
    )
    return SignedRequest(index, tok, body, headers)


def send_commands(
    run: str,
    count: int,
    *,
    secret: str,
    timestamp: int,
    team_id: str,
    channels: Sequence[str],
    user_id: str,
    response_url: str,
    option: str = "",
) -> list[SignedRequest]:
    """`count` signed send commands numbered 0…count-1, from `channels` in turn."""
    return [
        send_command(
            run,
            i,
            secret=secret,
            timestamp=timestamp,
            team_id=team_id,
            channel_id=channels[i % len(channels)],
            user_id=user_id,
            response_url=response_url,
            option=option,
        )
        for i in range(count)
    ]

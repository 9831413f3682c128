"""What the simulator records and keeps: calls, deliveries, faults, triggers, response URLs, open views."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class ApiCall:
    """One Web API call (or response_url post) the simulator received, and what it answered."""

    method: str
    args: Json
    time: float
    status: int = 200
    response: Json = field(default_factory=dict)
    team_id: str | None = None  # the team the call's token belongs to (None: no valid token)

    @property
    def ok(self) -> bool:
        """Whether Slack would have answered ``ok: true``."""
        return bool(self.response.get("ok"))


def call_summary(call: ApiCall) -> Json:
    """The line the page's call log shows for one recorded call."""
    return {
        "method": call.method,
        "ok": call.ok,
        "error": call.response.get("error"),
        "status": call.status,
        "time": call.time,
    }


@dataclass(frozen=True)
class SlackResponse:
    """The bot's immediate HTTP answer to a request the simulated Slack client sent.

    ``status`` is 0 when there was no HTTP answer; ``error`` then says why, in Slack's words
    (``dispatch_failed``, ``operation_timeout``, ``client_validation`` when the modal never left the
    "client" because a required field was empty).
    """

    status: int
    body: str
    headers: Mapping[str, str]
    error: str | None = None
    elapsed: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Delivery:
    """A signed request the simulator sent to the bot, with its payload decoded."""

    kind: str  # "slash_command", "block_actions", "view_submission", "view_closed", "event_callback"
    payload: Json
    body: bytes
    headers: Mapping[str, str]
    response: SlackResponse
    transport: str = "http"  # "socket" when it went over a Socket Mode connection (body: the envelope)


@dataclass
class _Token:
    value: str = field(repr=False)
    team_id: str
    scopes: frozenset[str] | None  # None: the app's configured scopes
    expires_at: float | None = None  # simulator clock; None: never (no token rotation)
    revoked: bool = False


@dataclass
class _Fault:
    method: str
    error: str | None
    status: int
    retry_after: int | None
    times: int


@dataclass
class _Trigger:
    id: str
    issued: float
    user_id: str
    view_id: str | None = None
    used: bool = False


@dataclass
class _ResponseUrl:
    id: str
    channel_id: str
    user_id: str
    created: float
    source_ts: str | None
    source_ephemeral: bool
    uses: int = 0


@dataclass
class _OpenView:
    view: Json
    user_id: str
    seq: int
    errors: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    """A Slack ``ok: false`` answer."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _json_arg(value: Any, name: str) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            raise _ApiError(f"invalid_{name}_format" if name == "blocks" else "invalid_arguments") from None
    return value

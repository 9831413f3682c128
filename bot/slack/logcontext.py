"""Who and what, for the logs: a Slack request's id, team, user and subcommand, bound for all its lines.

`bind_request` is a Bolt global middleware (run before authorization), so requests over HTTP and over
Socket Mode both pass it; `http_request` gives the HTTP door's own lines around Bolt the same fields.
Only IDs and names the app itself chose are logged: never a message body, a phone number, or any other
free text, which is where a secret pasted by mistake would be.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body

from bot import logs
from bot.core.commands import SUBCOMMANDS

# Slack's IDs: T…, E… (teams), U…, W… (users). Anything else is shown as "?".
_SLACK_ID = re.compile(r"[A-Z0-9]{1,32}")
# The callback_ids and action_ids this app gives its views and buttons ("twilio_send", "reopen_modal:send"),
# and event types: letters and underscores, so nothing shaped like a token or a number fits.
_APP_NAME = re.compile(r"[a-z][a-z_]{0,39}(:[a-z-]{1,20})?")
UNKNOWN = "?"

log = logging.getLogger(__name__)


def request_id_of(raw: bytes) -> str:
    """A short id for an HTTP request: a redelivery of the same signed body gets the same one."""
    return hashlib.sha256(raw).hexdigest()[:8]


def context_of(body: Mapping[str, Any], request_id: str) -> logs.RequestContext:
    """The log fields of one parsed Slack request (slash command, interactivity or event)."""
    team = (
        _text(body.get("team_id"))
        or _text(_field(body, "team", "id"))
        or _text(_field(body, "user", "team_id"))
    )
    user = (
        _text(body.get("user_id"))
        or _text(_field(body, "user", "id"))
        or _text(_field(body, "event", "user"))
    )
    return logs.RequestContext(
        request_id=request_id,
        team=_slack_id(team),
        user=_slack_id(user),
        subcommand=subcommand_of(body),
    )


def subcommand_of(body: Mapping[str, Any]) -> str:
    """A slash command's subcommand (first word), or the view's callback_id, the action_id, the event type."""
    if "command" in body:
        first = _text(body.get("text")).split(None, 1)
        word = first[0].lower() if first else "help"
        return word if word in SUBCOMMANDS else UNKNOWN
    kind = _text(body.get("type"))
    if kind in {"view_submission", "view_closed"}:
        name = _field(body, "view", "callback_id")
    elif kind == "block_actions":
        actions = body.get("actions")
        name = (
            actions[0].get("action_id")
            if isinstance(actions, list) and actions and isinstance(actions[0], dict)
            else None
        )
    elif kind in {"shortcut", "message_action"}:
        name = body.get("callback_id")
    elif kind == "block_suggestion":
        name = body.get("action_id")
    elif kind == "event_callback":
        name = _field(body, "event", "type")
    else:
        name = kind
    return _app_name(name)


async def bind_request(
    req: AsyncBoltRequest, body: dict[str, Any], next_: Callable[[], Awaitable[Any]]
) -> Any:
    """Bolt middleware: bind this request's fields for every line logged while handling it."""
    # Over HTTP the id is the body's, as `http_request` gives it; Socket Mode has no raw body to hash.
    raw = req.raw_body
    request_id = request_id_of(raw.encode("utf-8")) if raw else secrets.token_hex(4)
    logs.bind(context_of(body, request_id))
    log.debug("handling a Slack %s", _kind(body))
    return await next_()


class _Fields:
    """A signed HTTP request's log fields, worked out the first time a line is logged: most requests log
    none. A plain object rather than cached closures: this is made for every request on the ack path."""

    __slots__ = ("_body", "_content_type", "_context", "_raw")

    def __init__(self, raw: bytes, content_type: str) -> None:
        self._raw = raw
        self._content_type = content_type
        self._body: Mapping[str, Any] | None = None
        self._context: logs.RequestContext | None = None

    def body(self) -> Mapping[str, Any]:
        if self._body is None:
            try:
                parsed = parse_body(self._raw.decode("utf-8"), self._content_type)
            except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep: refused anyway
                parsed = {}
            self._body = parsed if isinstance(parsed, Mapping) else {}
        return self._body

    def __call__(self) -> logs.RequestContext:
        if self._context is None:
            self._context = context_of(self.body(), request_id_of(self._raw))
        return self._context


@contextlib.contextmanager
def http_request(raw: bytes, content_type: str) -> Iterator[None]:
    """The fields of a signed HTTP request, for every line logged while the door and Bolt handle it and
    by the work it starts (over HTTP, `bind_request` is not installed: this does its job)."""
    fields = _Fields(raw, content_type)
    with logs.scope(fields):
        if log.isEnabledFor(logging.DEBUG):
            log.debug("handling a Slack %s", _kind(fields.body()))
        yield


def _kind(body: Mapping[str, Any]) -> str:
    return "slash command" if "command" in body else _app_name(body.get("type"))


def _field(body: Mapping[str, Any], outer: str, inner: str) -> Any:
    value = body.get(outer)
    return value.get(inner) if isinstance(value, Mapping) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _app_name(value: Any) -> str:
    text = _text(value)
    if not text:
        return ""
    return text if _APP_NAME.fullmatch(text) else UNKNOWN


def _slack_id(value: str) -> str:
    if not value:
        return ""
    return value if _SLACK_ID.fullmatch(value) else UNKNOWN

"""The process's Prometheus metrics, served at `GET /metrics`.

Each bot gets its own registry (several bots in one test process must not share counters). The
instruments sit at the edges: the Twilio client reports every HTTP try through its `CallObserver`, the
Slack Web API client through a retry handler that sees every answer, the doors through `bot.meter.Meter`
and the server per Slack request. Every label value comes from a fixed vocabulary and anything else
becomes "other": a label never carries a phone number, a SID, a token or whatever a user typed.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.request.internals import parse_body
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.core.commands import SUBCOMMANDS
from bot.monitor import LagProbe
from bot.slack.cards import (
    ACTION_CANCEL,
    ACTION_DELETE,
    ACTION_NEXT_PAGE,
    ACTION_REFRESH,
    ACTION_REOPEN,
)
from bot.slack.logcontext import subcommand_of
from bot.slack.modals import CALLBACKS
from bot.twilio.errors import HINTS, TwilioError

__all__ = [
    "CONTENT_TYPE",
    "LagSampler",
    "Metrics",
    "SlackCallCounter",
    "pick",
    "raw_request_labels",
    "request_labels",
]

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
OTHER: Final = "other"

_SUBCOMMANDS = frozenset(SUBCOMMANDS)
COMMAND_OUTCOMES = frozenset(
    {"ok", "accepted", "form", "rejected", "denied", "busy", "unknown", "database_down"}
)
OPERATION_OUTCOMES = frozenset(
    {"ok", "duplicate", "rejected", "twilio_error", "unknown", "error", "database_down"}
)
REQUEST_KINDS = frozenset(
    {"command", "block_actions", "view_submission", "view_closed", "shortcut", "event_callback", "unknown"}
)
# What a request is about: the subcommand typed, the button's action_id or the form's callback_id.
REQUEST_NAMES = frozenset(
    {
        *SUBCOMMANDS,
        *CALLBACKS.values(),
        ACTION_REFRESH,
        ACTION_CANCEL,
        ACTION_DELETE,
        ACTION_NEXT_PAGE,
        ACTION_REOPEN,
    }
)
TWILIO_ENDPOINTS = frozenset(
    {
        "messages.create",
        "messages.list",
        "messages.fetch",
        "messages.update",
        "messages.delete",
        "accounts.fetch",
    }
)
# The codes the bot explains in words; any other code Twilio sends is counted as "other".
TWILIO_CODES = frozenset(str(code) for code in HINTS)
SLACK_METHODS = frozenset(
    {
        "auth.test",
        "response_url",
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "chat.delete",
        "users.info",
        "views.open",
        "views.update",
        "views.push",
        "conversations.info",
    }
)
SLACK_ERRORS = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "ratelimited",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "invalid_blocks",
        "msg_too_long",
        "message_not_found",
        "cant_update_message",
        "expired_trigger_id",
        "user_not_found",
        "internal_error",
        "fatal_error",
        "request_timeout",
        "service_unavailable",
    }
)

# Twilio answers in about 100-300 ms; the top buckets catch timeouts (TWILIO_TIMEOUT defaults to 10 s).
TWILIO_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Reading the outbox count must not hold a scrape when the database is slow; past this it is left out.
OUTBOX_READ_TIMEOUT = 2.0


def pick(value: str, vocabulary: frozenset[str]) -> str:
    """`value` when it is one of `vocabulary`, else "other"."""
    return value if value in vocabulary else OTHER


def http_status(status: int | None) -> str:
    """An HTTP status as a label: the number, "none" when no answer came, "other" for nonsense."""
    if status is None:
        return "none"
    return str(status) if 100 <= status <= 599 else OTHER


def request_labels(body: Mapping[str, Any]) -> tuple[str, str]:
    """A parsed Slack request's kind (command, block_actions…) and name (subcommand, action, form)."""
    name = pick(subcommand_of(body).split(":", 1)[0], REQUEST_NAMES)
    if "command" in body:
        return "command", name
    kind = body.get("type")
    return (pick(kind, REQUEST_KINDS) if isinstance(kind, str) else "unknown"), name


def raw_request_labels(raw: bytes, content_type: str) -> tuple[str, str]:
    """`request_labels` of a body not parsed yet (a redelivery, answered without Bolt)."""
    try:
        body = parse_body(raw.decode("utf-8"), content_type)
    except (ValueError, RecursionError):
        return "unknown", OTHER
    return request_labels(body) if isinstance(body, Mapping) else ("unknown", OTHER)


class Metrics:
    """One bot's instruments and their registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)  # CPU, memory, open files: read from /proc at scrape time
        # Every instrument goes to this bot's registry, never to prometheus_client's global one.
        counter = partial(Counter, registry=self.registry)
        histogram = partial(Histogram, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        self.commands = counter(
            "bridge_commands",
            "/twilio commands by subcommand and how their ack went.",
            ["subcommand", "outcome"],
        )
        self.operations = counter(
            "bridge_operations",
            "Twilio commands run after the ack (typed, from a form or a button), by outcome.",
            ["subcommand", "outcome"],
        )
        self.slack_requests = counter(
            "bridge_slack_requests",
            "Requests Slack sent to /slack/events, by kind, subcommand/action/form and answer.",
            ["kind", "name", "outcome"],
        )
        self.twilio_requests = counter(
            "bridge_twilio_requests",
            "HTTP tries at Twilio's API by endpoint and status (none: no answer).",
            ["endpoint", "status"],
        )
        self.twilio_seconds = histogram(
            "bridge_twilio_request_duration_seconds",
            "How long one HTTP try at Twilio took, answered or not.",
            ["endpoint"],
            buckets=TWILIO_BUCKETS,
        )
        self.twilio_errors = counter(
            "bridge_twilio_errors",
            "Twilio calls that failed after their retries, by Twilio error code (none: no code).",
            ["code"],
        )
        self.slack_calls = counter(
            "bridge_slack_api_calls",
            "Slack Web API answers by method and outcome (ok, Slack's error name, http_5xx, no_answer).",
            ["method", "outcome"],
        )
        self.slack_ratelimited = counter(
            "bridge_slack_api_ratelimited",
            "Slack Web API answers with HTTP 429, by method (the client waits and retries).",
            ["method"],
        )
        self.outbox_pending = gauge(
            "bridge_outbox_pending",
            "Outbox rows waiting for an outcome, read at scrape time (NaN: the database did not answer).",
        )
        self.tasks_in_flight = gauge(
            "bridge_tasks_in_flight", "Background tasks running now (work after Slack's ack)."
        )
        self.loop_lag = histogram(
            "bridge_event_loop_lag_seconds",
            "How late the event loop woke a timer, sampled every half second.",
            buckets=LAG_BUCKETS,
        )
        self._count_pending: Callable[[], Awaitable[int]] | None = None

    def watch(self, *, tasks: Callable[[], int], pending: Callable[[], Awaitable[int]]) -> None:
        """Read the in-flight count and the outbox's pending count (an awaitable) at scrape time."""
        self.tasks_in_flight.set_function(lambda: float(tasks()))
        self._count_pending = pending

    # ── the doors (bot.meter.Meter) ─────────────────────────────────────────────────────────────────

    def command(self, subcommand: str, outcome: str) -> None:
        """Count one `/twilio` command's ack."""
        self.commands.labels(pick(subcommand, _SUBCOMMANDS), pick(outcome, COMMAND_OUTCOMES)).inc()

    def operation(self, subcommand: str, outcome: str) -> None:
        """Count one Twilio command's end."""
        self.operations.labels(pick(subcommand, _SUBCOMMANDS), pick(outcome, OPERATION_OUTCOMES)).inc()

    def slack_request(self, kind: str, name: str, status: int, *, repeated: bool = False) -> None:
        """Count one request to /slack/events by its kind, name and the answer it got."""
        if repeated:
            outcome = "repeated"
        elif 200 <= status < 300:
            outcome = "ok"
        else:
            outcome = {401: "rejected", 400: "bad_request", 404: "unhandled"}.get(status, "error")
        self.slack_requests.labels(pick(kind, REQUEST_KINDS), pick(name, REQUEST_NAMES), outcome).inc()

    def reply(self, status: int | None) -> None:
        """Count one post to a response_url as Slack method "response_url"."""
        if status is None:
            outcome = "no_answer"
        elif status == 429:
            outcome = "ratelimited"
        else:
            outcome = "ok" if status < 400 else "http_5xx" if status >= 500 else "http_error"
        self.slack_call("response_url", outcome)

    # ── Twilio (bot.twilio.client.CallObserver) ─────────────────────────────────────────────────────

    def attempt(self, endpoint: str, status: int | None, seconds: float) -> None:
        """Count and time one HTTP try at Twilio."""
        name = pick(endpoint, TWILIO_ENDPOINTS)
        self.twilio_requests.labels(name, http_status(status)).inc()
        self.twilio_seconds.labels(name).observe(seconds)

    def failed(self, endpoint: str, error: TwilioError) -> None:
        """Count a failed Twilio call by its error code."""
        code = "none" if error.code is None else pick(str(error.code), TWILIO_CODES)
        self.twilio_errors.labels(code).inc()

    # ── Slack's Web API ─────────────────────────────────────────────────────────────────────────────

    def slack_call(self, method: str, outcome: str) -> None:
        """Count one Slack Web API answer."""
        name = pick(method, SLACK_METHODS)
        self.slack_calls.labels(name, outcome).inc()
        if outcome == "ratelimited":
            self.slack_ratelimited.labels(name).inc()

    # ── the scrape ──────────────────────────────────────────────────────────────────────────────────

    async def render(self) -> bytes:
        """The text exposition, after reading what is read at scrape time."""
        if self._count_pending is not None:
            try:
                pending = await asyncio.wait_for(self._count_pending(), OUTBOX_READ_TIMEOUT)
            except Exception as err:  # a scrape must answer even when the database does not
                log.warning("metrics: could not count the outbox: %s", type(err).__name__)
                self.outbox_pending.set(math.nan)
            else:
                self.outbox_pending.set(pending)
        return generate_latest(self.registry)


class SlackCallCounter(AsyncRetryHandler):
    """A retry handler that never retries: slack_sdk asks it about every answer, so it counts them all.

    It goes first in the client's handlers and answers False, so the real handlers still decide. Bolt
    copies the handler list into each request's client, so its calls are counted too.
    """

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=0)
        self._metrics = metrics

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        """Count the answer (or its absence); never asks for a retry."""
        method = request.url.rsplit("/", 1)[-1]
        self._metrics.slack_call(method, _slack_outcome(response, error))
        return False


def _slack_outcome(response: HttpResponse | None, error: Exception | None) -> str:
    if response is None or error is not None:
        return "no_answer"
    if response.status_code == 429:
        return "ratelimited"
    if response.status_code >= 500:
        return "http_5xx"
    body = response.body if isinstance(response.body, dict) else {}
    if body.get("ok") is True:
        return "ok"
    error_name = body.get("error")
    return pick(error_name, SLACK_ERRORS) if isinstance(error_name, str) else "http_error"


class LagSampler(LagProbe):
    """Feeds the loop-lag histogram: how late a half-second timer fires.

    Always on, unlike the 10 ms `LoopMonitor` (BOT_LOOP_MONITOR, for benchmarks): two wake-ups a second
    cost nothing measurable, and a stall that holds the loop shows up in the histogram as soon as it
    overlaps a wake-up; a loop that is busy for a sustained period shows in most samples.
    """

    name = "loop lag sampler"

    def __init__(self, histogram: Histogram, interval: float = 0.5) -> None:
        super().__init__(interval)
        self._histogram = histogram

    def record(self, lag: float) -> None:
        """Observe one sample (seconds late)."""
        self._histogram.observe(max(lag, 0.0))

"""GET /metrics: the counters move with real traffic, and no label carries a number, a SID or a secret."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from builders import claimed_send
from deliveries import last_body
from harness import Stack
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from signing import post
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from waiting import until

from bot.metrics import LagSampler, Metrics, SlackCallCounter, pick
from bot.sandbox.slack import TEAM_ID
from bot.sandbox.twilio import SANDBOX_ACCOUNT_SID, Fault
from bot.twilio.client import endpoint_name
from storage.outbox import Settlement

TO = "+15551234567"
INVALID_TO = "+15005550001"  # the simulator answers 21211 for this one
SECRET_WORDS = "hunter2-correct-horse-battery"
StackFactory = Callable[..., Awaitable[Stack]]


async def scrape(stack: Stack) -> tuple[str, list[Sample]]:
    """The raw exposition and every sample in it."""
    async with aiohttp.ClientSession() as session, session.get(f"{stack.bot_url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return text, [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples: list[Sample], metric: str, /, **labels: str) -> float:
    """The sample `metric` with exactly `labels` (0 when the series does not exist yet)."""
    found = [s.value for s in samples if s.name == metric and s.labels == labels]
    assert len(found) <= 1
    return found[0] if found else 0.0


async def test_traffic_moves_the_counters_and_no_label_carries_a_number_or_secret(
    make_stack: StackFactory,
) -> None:
    """Sends, failures, refusals and 429s are counted by fixed names; no phone, SID or secret leaks."""
    stack = await make_stack(twilio_backoff_base=0.001)
    stack.twilio.inject(
        Fault("status", status=429, method="POST", path_contains="/Messages.json", retry_after=0)
    )
    stack.slack.inject("chat.postMessage", status=429, retry_after=0)
    stack.slack.inject("chat.postMessage", status=503)
    await stack.command(f"send {TO} {SECRET_WORDS}")
    await stack.command(f"send {INVALID_TO} {SECRET_WORDS}")
    await stack.command(f"send +1555 {SECRET_WORDS}")  # refused at the ack: too short
    await stack.command(f"{TO} {SECRET_WORDS}")  # a number where the subcommand goes
    sms = [r.message_sid for r in stack.twilio.creates() if r.message_sid]
    assert sms
    await stack.command(f"fetch SM{'0' * 32}")  # no such message: Twilio's 20404
    await stack.command("setup")
    wrong_token = "wrong-token-" + SECRET_WORDS
    await stack.submit(
        stack.opened_view()["id"], {"account_sid": SANDBOX_ACCOUNT_SID, "auth_token": wrong_token}
    )
    unsigned_status, _ = await stack.post_signed(b"command=%2Ftwilio&text=send", signature="")
    assert unsigned_status == 401

    text, samples = await scrape(stack)

    assert value(samples, "bridge_commands_total", subcommand="send", outcome="accepted") == 2
    assert value(samples, "bridge_commands_total", subcommand="send", outcome="rejected") == 1
    assert value(samples, "bridge_commands_total", subcommand="other", outcome="unknown") == 1
    assert value(samples, "bridge_operations_total", subcommand="send", outcome="ok") == 1
    assert value(samples, "bridge_operations_total", subcommand="send", outcome="twilio_error") == 1
    assert value(samples, "bridge_operations_total", subcommand="fetch", outcome="twilio_error") == 1
    create = {"endpoint": "messages.create"}
    assert value(samples, "bridge_twilio_requests_total", **create, status="429") == 1
    assert value(samples, "bridge_twilio_requests_total", **create, status="201") == 1
    assert value(samples, "bridge_twilio_requests_total", **create, status="400") == 1
    assert value(samples, "bridge_twilio_requests_total", endpoint="messages.fetch", status="404") == 1
    assert value(samples, "bridge_twilio_request_duration_seconds_count", **create) == 3
    assert value(samples, "bridge_twilio_errors_total", code="21211") == 1
    assert value(samples, "bridge_twilio_errors_total", code="20404") == 1
    assert value(samples, "bridge_twilio_errors_total", code="20003") == 1
    assert value(samples, "bridge_twilio_requests_total", endpoint="accounts.fetch", status="401") == 1
    assert value(samples, "bridge_commands_total", subcommand="setup", outcome="form") == 1
    assert value(samples, "bridge_slack_api_ratelimited_total", method="chat.postMessage") == 1
    assert value(samples, "bridge_slack_api_calls_total", method="chat.postMessage", outcome="ok") >= 1
    assert value(samples, "bridge_slack_api_calls_total", method="chat.postMessage", outcome="http_5xx") == 1
    assert value(samples, "bridge_slack_api_calls_total", method="auth.test", outcome="ok") >= 1
    # The failed send's sentence and the two working notes went through the commands' response_url.
    assert value(samples, "bridge_slack_api_calls_total", method="response_url", outcome="ok") >= 3
    requests = "bridge_slack_requests_total"
    assert value(samples, requests, kind="command", name="send", outcome="ok") == 3
    assert value(samples, requests, kind="command", name="fetch", outcome="ok") == 1
    assert value(samples, requests, kind="command", name="other", outcome="ok") == 1
    assert value(samples, requests, kind="unknown", name="other", outcome="rejected") == 1
    assert value(samples, requests, kind="view_submission", name="twilio_setup", outcome="ok") == 1
    assert value(samples, "bridge_outbox_pending") == 0
    assert value(samples, "bridge_tasks_in_flight") == 0

    secrets = [stack.twilio_token, stack.bot_token, stack.signing_secret, wrong_token, "hunter2"]
    for leak in [*secrets, TO, TO[1:], INVALID_TO[1:], "5551234567", SANDBOX_ACCOUNT_SID, TEAM_ID, *sms]:
        assert leak not in text
    assert not re.search(r"\b(?:AC|SM|MM|MG)[0-9a-f]{32}\b", text)
    for sample in samples:
        for name, label_value in sample.labels.items():
            # Words, HTTP statuses and Twilio's 5-digit codes; only a histogram's bucket bound is a number.
            allowed = r"[0-9.]+|\+Inf" if name == "le" else r"[A-Za-z_.-]+|http_5xx|\d{3}|\d{5}"
            assert re.fullmatch(allowed, label_value), sample


async def test_a_button_and_a_redelivery_are_counted_by_name(stack: Stack) -> None:
    """Refresh on a card counts as block_actions/refresh_message and a fetch; a Slack retry as repeated."""
    await stack.command(f"send {TO} hello")
    await stack.click(stack.last_card(), "refresh_message")
    status, _ = await post(
        stack.bot_url, last_body(stack.slack, "slash_command"), secret=stack.signing_secret
    )
    assert status == 200
    await stack.settle()
    _, samples = await scrape(stack)
    requests = "bridge_slack_requests_total"
    assert value(samples, requests, kind="block_actions", name="refresh_message", outcome="ok") == 1
    assert value(samples, requests, kind="command", name="send", outcome="repeated") == 1
    assert value(samples, "bridge_operations_total", subcommand="fetch", outcome="ok") == 1
    assert value(samples, "bridge_operations_total", subcommand="send", outcome="ok") == 1
    assert len(stack.twilio.creates()) == 1


async def test_each_bot_counts_only_its_own_traffic(make_stack: StackFactory) -> None:
    """Two bots in one process keep separate registries: one's sends never show in the other's scrape."""
    busy, idle = await make_stack(), await make_stack()
    await busy.command(f"send {TO} hello")
    _, busy_samples = await scrape(busy)
    _, idle_samples = await scrape(idle)
    assert value(busy_samples, "bridge_operations_total", subcommand="send", outcome="ok") == 1
    assert value(idle_samples, "bridge_operations_total", subcommand="send", outcome="ok") == 0
    assert value(idle_samples, "bridge_twilio_requests_total", endpoint="messages.create", status="201") == 0


async def test_outbox_pending_is_read_at_scrape_time(stack: Stack) -> None:
    """A claim that has no outcome yet shows in bridge_outbox_pending; settling it brings it back to 0."""
    outbox = stack.runtime.stores.outbox
    await outbox.claim(claimed_send("k-metrics", {"to": TO, "from": None, "body": "x", "send_at": None}))
    _, samples = await scrape(stack)
    assert value(samples, "bridge_outbox_pending") == 1
    await outbox.settle("k-metrics", Settlement("failed"))
    _, samples = await scrape(stack)
    assert value(samples, "bridge_outbox_pending") == 0


async def test_a_twilio_call_without_an_answer_is_counted_with_status_none(make_stack: StackFactory) -> None:
    """A dropped connection on a send counts as status "none" and the operation as an unknown outcome."""
    stack = await make_stack(twilio_backoff_base=0.001)
    stack.twilio.inject(Fault("reset", method="POST", path_contains="/Messages.json"))
    await stack.command(f"send {TO} hello")
    _, samples = await scrape(stack)
    assert value(samples, "bridge_twilio_requests_total", endpoint="messages.create", status="none") == 1
    assert value(samples, "bridge_operations_total", subcommand="send", outcome="unknown") == 1
    assert value(samples, "bridge_twilio_errors_total", code="none") == 1


def test_endpoint_names_never_carry_a_sid() -> None:
    """Every Twilio path maps to a fixed name; an unknown one is "other"."""
    account = f"/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}"
    message = f"{account}/Messages/SM{'a' * 32}.json"
    assert endpoint_name("POST", f"{account}/Messages.json") == "messages.create"
    assert endpoint_name("GET", f"http://x{account}/Messages.json?To=%2B15551234567") == "messages.list"
    assert endpoint_name("GET", message) == "messages.fetch"
    assert endpoint_name("POST", message) == "messages.update"
    assert endpoint_name("DELETE", message) == "messages.delete"
    assert endpoint_name("GET", f"{account}.json") == "accounts.fetch"
    assert endpoint_name("GET", f"{account}/IncomingPhoneNumbers.json") == "other"
    assert pick("+15551234567", frozenset({"send"})) == "other"


def test_labels_outside_the_vocabulary_become_other() -> None:
    """Whatever a caller passes, the series carry only known words."""
    metrics = Metrics()
    metrics.command("+15551234567", "hunter2")
    metrics.slack_call("chat.postMessage?token=xoxb-1", "ok")
    metrics.attempt("/Accounts/AC1/Messages.json", 99999, 0.1)
    text = generate_latest(metrics.registry).decode()
    assert 'bridge_commands_total{outcome="other",subcommand="other"} 1.0' in text
    assert 'bridge_slack_api_calls_total{method="other",outcome="ok"} 1.0' in text
    assert 'bridge_twilio_requests_total{endpoint="other",status="other"} 1.0' in text
    assert "15551234567" not in text and "hunter2" not in text and "xoxb" not in text


@pytest.mark.parametrize(
    ("status", "body", "error", "outcome"),
    [
        (200, {"ok": True}, None, "ok"),
        (200, {"ok": False, "error": "not_in_channel"}, None, "not_in_channel"),
        (200, {"ok": False, "error": "made_up_error_xoxb-123"}, None, "other"),
        (429, {"ok": False, "error": "ratelimited"}, None, "ratelimited"),
        (503, {}, None, "http_5xx"),
        (None, None, ConnectionResetError(), "no_answer"),
    ],
)
async def test_the_slack_counter_names_every_answer_and_never_retries(
    status: int | None, body: dict[str, object] | None, error: Exception | None, outcome: str
) -> None:
    """Each Slack answer lands under its outcome; the handler always leaves the retry to the others."""
    metrics = Metrics()
    counter = SlackCallCounter(metrics)
    request = HttpRequest(method="POST", url="http://slack.test/api/chat.postMessage", headers={})
    response = None if status is None else HttpResponse(status_code=status, headers={}, body=body)
    retry = await counter.can_retry_async(state=RetryState(), request=request, response=response, error=error)
    assert retry is False
    text = generate_latest(metrics.registry).decode()
    assert f'bridge_slack_api_calls_total{{method="chat.postMessage",outcome="{outcome}"}} 1.0' in text
    assert "xoxb" not in text


async def test_the_lag_sampler_sees_a_loop_that_was_held() -> None:
    """Holding the loop for 60 ms lands a sample in the 50-100 ms bucket or above."""
    metrics = Metrics()
    sampler = LagSampler(metrics.loop_lag, interval=0.01)
    sampler.start()
    try:
        await until(lambda: _lag_count(metrics) >= 1, what="a first sample")
        time.sleep(0.06)  # holding the loop is what is measured here, not a wait
        before = _lag_count(metrics)
        await until(lambda: _lag_count(metrics) > before, what="the sample after the stall")
    finally:
        await sampler.stop()
    samples = metrics.loop_lag.collect()[0].samples
    under_50ms = next(s.value for s in samples if s.name.endswith("_bucket") and s.labels["le"] == "0.05")
    assert _lag_count(metrics) - under_50ms >= 1


def _lag_count(metrics: Metrics) -> float:
    return next(s.value for s in metrics.loop_lag.collect()[0].samples if s.name.endswith("_count"))


async def test_metrics_answers_even_when_the_database_is_closed(stack: Stack) -> None:
    """With the database gone, the scrape still answers and the pending gauge says NaN."""
    await stack.runtime.db.close()
    async with aiohttp.ClientSession() as session, session.get(f"{stack.bot_url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert "bridge_outbox_pending NaN" in text

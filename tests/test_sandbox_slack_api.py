"""The Slack simulator's newer Web API: message metadata and conversations.history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack import (
    GENERAL_ID,
    OPS_ID,
    PRIVATE_ID,
    SlackSimulator,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-api-token"
SCOPES = {
    "chat:write",
    "channels:history",
    "groups:history",
    "reactions:write",
    "files:read",
    "files:write",
}


class FakeClock:
    """A settable clock for rate-limit buckets."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[SlackSimulator]:
    simulator = SlackSimulator(
        signing_secret=SECRET, bot_token=TOKEN, manifest_path=None, scopes=SCOPES, clock=clock
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def client(sim: SlackSimulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=sim.api_url)


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as refused:
        await call
    return str(refused.value.response["error"])


# ----- metadata and conversations.history ----------------------------------------------------------


async def test_metadata_is_stored_and_shown_only_when_asked(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """chat.postMessage keeps metadata; history shows it with include_all_metadata only."""
    metadata = {"event_type": "twilio_card", "event_payload": {"key": "cmd:T1:abc", "n": 1}}
    posted = await client.chat_postMessage(channel=GENERAL_ID, text="card", metadata=metadata)
    assert sim.message(GENERAL_ID, posted["ts"])["metadata"] == metadata
    plain = await client.conversations_history(channel=GENERAL_ID)
    assert "metadata" not in plain["messages"][0]
    full = await client.conversations_history(channel=GENERAL_ID, include_all_metadata=True)
    assert full["messages"][0]["metadata"] == metadata
    bad = client.chat_postMessage(channel=GENERAL_ID, text="x", metadata={"event_payload": {}})
    assert await error_of(bad) == "invalid_metadata_schema"


async def test_history_pages_newest_first_within_a_window(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    """Newest first, limit and cursor paging, oldest/latest exclusive, thread replies left out."""
    stamps = [(await client.chat_postMessage(channel=OPS_ID, text=f"m{i}"))["ts"] for i in range(5)]
    await client.chat_postMessage(channel=OPS_ID, text="reply", thread_ts=stamps[0])
    first = await client.conversations_history(channel=OPS_ID, limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"] and first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    second = await client.conversations_history(channel=OPS_ID, limit=2, cursor=cursor)
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]
    third = await client.conversations_history(
        channel=OPS_ID, limit=2, cursor=second["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in third["messages"]] == ["m0"] and third["response_metadata"][
        "next_cursor"
    ] == ""
    window = await client.conversations_history(channel=OPS_ID, oldest=stamps[1], latest=stamps[4])
    assert [m["text"] for m in window["messages"]] == ["m3", "m2"]
    assert (
        await error_of(client.conversations_history(channel=OPS_ID, cursor="not-a-cursor"))
        == "invalid_cursor"
    )


async def test_history_scopes_follow_the_channel_type(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """A public channel needs channels:history, a private one groups:history."""
    private = sim.add_channel("private-bot", private=True)
    sim._tokens[TOKEN].scopes = frozenset(SCOPES - {"groups:history"})
    await client.conversations_history(channel=GENERAL_ID)
    with pytest.raises(SlackApiError) as refused:
        await client.conversations_history(channel=private)
    assert (
        refused.value.response["error"] == "missing_scope"
        and refused.value.response["needed"] == "groups:history"
    )
    sim._tokens[TOKEN].scopes = frozenset(SCOPES - {"channels:history"})
    assert await error_of(client.conversations_history(channel=GENERAL_ID)) == "missing_scope"


async def test_history_where_the_bot_is_not(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """not_in_channel for a public channel without the bot; a private one stays hidden."""
    outside = sim.add_channel("outside", bot_member=False)
    assert await error_of(client.conversations_history(channel=outside)) == "not_in_channel"
    assert await error_of(client.conversations_history(channel=PRIVATE_ID)) == "channel_not_found"

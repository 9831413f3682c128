"""The Slack simulator's newer Web API: metadata and history, reactions, files, and rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sandbox_helpers import FakeClock, running_slack
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack import (
    BOT_USER_ID,
    GENERAL_ID,
    MEMBER_ID,
    OPS_ID,
    PRIVATE_ID,
    SimFile,
    SlackSimulator,
)

TOKEN = "xoxb-api-token"
SCOPES = {
    "chat:write",
    "channels:history",
    "groups:history",
    "reactions:write",
    "files:read",
    "files:write",
}


@pytest.fixture
async def sim(slack_clock: FakeClock) -> AsyncIterator[SlackSimulator]:
    async with running_slack(TOKEN, scopes=SCOPES, clock=slack_clock) as simulator:
        yield simulator


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


# ----- reactions --------------------------------------------------------------------------------


async def test_reactions_add_and_remove(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """Reactions are stored on the message; twice is already_reacted, removing a missing one no_reaction."""
    posted = await sim.post_message(GENERAL_ID, "a reply", user=MEMBER_ID)
    await client.reactions_add(channel=GENERAL_ID, timestamp=posted["ts"], name="outbox_tray")
    await client.reactions_add(channel=GENERAL_ID, timestamp=posted["ts"], name=":white_check_mark:")
    assert sim.reactions_on(GENERAL_ID, posted["ts"]) == {
        "outbox_tray": [BOT_USER_ID],
        "white_check_mark": [BOT_USER_ID],
    }
    again = client.reactions_add(channel=GENERAL_ID, timestamp=posted["ts"], name="outbox_tray")
    assert await error_of(again) == "already_reacted"
    await client.reactions_remove(channel=GENERAL_ID, timestamp=posted["ts"], name="outbox_tray")
    assert list(sim.reactions_on(GENERAL_ID, posted["ts"])) == ["white_check_mark"]
    missing = client.reactions_remove(channel=GENERAL_ID, timestamp=posted["ts"], name="outbox_tray")
    assert await error_of(missing) == "no_reaction"
    assert (
        await error_of(client.reactions_add(channel=GENERAL_ID, timestamp="1.2", name="x"))
        == "message_not_found"
    )
    assert (
        await error_of(client.reactions_add(channel=GENERAL_ID, timestamp=posted["ts"], name="No Way"))
        == "invalid_name"
    )


async def test_reactions_need_their_scope(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """Without reactions:write, reactions.add is missing_scope."""
    posted = await sim.post_message(GENERAL_ID, "hi", user=MEMBER_ID)
    sim._tokens[TOKEN].scopes = frozenset(SCOPES - {"reactions:write"})
    assert (
        await error_of(client.reactions_add(channel=GENERAL_ID, timestamp=posted["ts"], name="eyes"))
        == "missing_scope"
    )


# ----- files ------------------------------------------------------------------------------------


async def test_files_upload_v2_shares_into_a_thread(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """slack_sdk's files_upload_v2 runs the three steps; the file lands in the thread with the comment."""
    root = await client.chat_postMessage(channel=GENERAL_ID, text="conversation")
    done = await client.files_upload_v2(
        channel=GENERAL_ID,
        thread_ts=root["ts"],
        content=b"\x89PNG picture",
        filename="mms.png",
        title="From +1555",
        initial_comment="MMS from +1555",
    )
    file_id = done["file"]["id"]
    assert sim.file_bytes(file_id) == b"\x89PNG picture"
    reply = sim.messages(GENERAL_ID)[-1]
    assert (reply["thread_ts"], reply["text"]) == (root["ts"], "MMS from +1555")
    assert reply["files"][0]["id"] == file_id and reply["files"][0]["title"] == "From +1555"
    info = await client.files_info(file=file_id)
    assert (info["file"]["name"], info["file"]["mimetype"], info["file"]["size"]) == (
        "mms.png",
        "image/png",
        12,
    )


async def test_complete_without_the_bytes_is_refused(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """completeUploadExternal for a file whose bytes never came: file_not_found, nothing posted."""
    started = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    before = len(sim.messages(GENERAL_ID))
    done = client.files_completeUploadExternal(files=[{"id": started["file_id"]}], channel_id=GENERAL_ID)
    assert await error_of(done) == "file_not_found"
    assert len(sim.messages(GENERAL_ID)) == before
    assert await error_of(client.files_getUploadURLExternal(filename="", length=3)) == "invalid_arguments"


async def test_url_private_needs_the_bot_token(sim: SlackSimulator) -> None:
    """A person's attachment: bytes with the Bearer token; without it, a sign-in page, as Slack does."""
    posted = await sim.post_message(
        GENERAL_ID, "see attached", user=MEMBER_ID, files=[SimFile("note.txt", b"hello")]
    )
    url = posted["files"][0]["url_private"]
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.status == 200 and await resp.read() == b"hello"
            assert resp.content_type == "text/plain"
        async with http.get(url) as resp:
            assert resp.status == 200 and resp.content_type == "text/html" and "Sign in" in await resp.text()
        async with http.get(
            url, headers={"Authorization": "Bearer xoxb-wrong"}, allow_redirects=False
        ) as resp:
            assert resp.status == 302
    assert [(d["authorization"], d["served"]) for d in sim.file_downloads] == [
        (True, True),
        (False, False),
        (True, False),
    ]


# ----- rate limits ------------------------------------------------------------------------------


async def test_rate_limits_are_off_by_default(sim: SlackSimulator, client: AsyncWebClient) -> None:
    """Without enable_rate_limits, a burst of posts all go through."""
    for i in range(10):
        await client.chat_postMessage(channel=GENERAL_ID, text=f"m{i}")
    assert sim.rate_limited == []


async def test_post_message_is_limited_per_channel_with_a_burst(
    sim: SlackSimulator, client: AsyncWebClient, slack_clock: FakeClock
) -> None:
    """About one post a second per channel after a small burst: then 429 with Retry-After, nothing stored."""
    sim.enable_rate_limits(post_per_second=1.0, post_burst=3)
    for i in range(3):
        await client.chat_postMessage(channel=GENERAL_ID, text=f"m{i}")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel=GENERAL_ID, text="too many")
    assert refused.value.response.status_code == 429 and refused.value.response.headers["Retry-After"] == "1"
    assert refused.value.response["error"] == "ratelimited"
    await client.chat_postMessage(channel=OPS_ID, text="another channel has its own bucket")
    slack_clock.now += 1.0
    await client.chat_postMessage(channel=GENERAL_ID, text="after a second")
    assert [m["text"] for m in sim.messages(GENERAL_ID)] == ["m0", "m1", "m2", "after a second"]
    assert [(c.method, c.status, c.args["text"]) for c in sim.rate_limited] == [
        ("chat.postMessage", 429, "too many")
    ]


async def test_chat_update_is_tier_3_per_workspace(
    sim: SlackSimulator, client: AsyncWebClient, slack_clock: FakeClock
) -> None:
    """chat.update: about 50 a minute per workspace, across channels, then 429."""
    sim.enable_rate_limits(update_per_minute=50)
    cards = [(await client.chat_postMessage(channel=c, text="card"))["ts"] for c in (GENERAL_ID, OPS_ID)]
    slack_clock.now += 10
    for i in range(50):
        await client.chat_update(channel=(GENERAL_ID, OPS_ID)[i % 2], ts=cards[i % 2], text=f"v{i}")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_update(channel=GENERAL_ID, ts=cards[0], text="v50")
    assert int(refused.value.response.headers["Retry-After"]) >= 1
    slack_clock.now += 2
    await client.chat_update(channel=GENERAL_ID, ts=cards[0], text="later")
    assert sim.message(GENERAL_ID, cards[0])["text"] == "later"
    sim.disable_rate_limits()
    for i in range(5):
        await client.chat_update(channel=OPS_ID, ts=cards[1], text=f"free {i}")
    assert len(sim.rate_limited) == 1

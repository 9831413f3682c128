"""Finding a card already posted, by the key in its message metadata, and what happens when it cannot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack import GENERAL_ID, OPS_ID, SlackSimulator
from bot.slack.delivery import card_metadata
from bot.slack.recovery import CardFinder

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-recovery-token"
EARLIER = datetime.now(UTC) - timedelta(minutes=5)


async def _simulator(**kwargs: object) -> tuple[SlackSimulator, AsyncWebClient]:
    sim = SlackSimulator(signing_secret=SECRET, bot_token=TOKEN, **kwargs)  # type: ignore[arg-type]
    await sim.start()
    return sim, AsyncWebClient(token=TOKEN, base_url=sim.api_url)


async def test_a_card_is_found_by_its_key_and_only_by_it() -> None:
    """The finder reads the channel once and knows which keys have cards there."""
    sim, client = await _simulator()
    try:
        await client.chat_postMessage(channel=GENERAL_ID, text="card", metadata=card_metadata("cmd:T:1"))
        await client.chat_postMessage(channel=GENERAL_ID, text="plain chatter")
        finder = CardFinder(client)
        card = await client.conversations_history(channel=GENERAL_ID, limit=2)
        assert await finder.posted(GENERAL_ID, "cmd:T:1", EARLIER) == card["messages"][1]["ts"]
        assert await finder.posted(GENERAL_ID, "cmd:T:2", EARLIER) is None
        assert await finder.posted(OPS_ID, "cmd:T:1", EARLIER) is None
        assert len(sim.calls_to("conversations.history")) == 3  # the test's own read, then once per channel
    finally:
        await sim.stop()


async def test_without_the_history_scopes_nothing_is_found_and_nothing_fails() -> None:
    """An app without channels:history cannot look: the card counts as not posted (posted again)."""
    sim, client = await _simulator(scopes={"commands", "chat:write", "users:read"})
    try:
        await client.chat_postMessage(channel=GENERAL_ID, text="card", metadata=card_metadata("cmd:T:1"))
        assert await CardFinder(client).posted(GENERAL_ID, "cmd:T:1", EARLIER) is None
        [call] = sim.calls_to("conversations.history")
        assert call.response["error"] == "missing_scope"
    finally:
        await sim.stop()

"""Routes, conversations, inbound texts, replies and Slack events, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from builders import new_inbound, new_route
from storage_fixtures import open_conversation

from storage.conversations import ConversationStore, RouteTaken
from storage.db import Database

AC = "AC" + "1" * 32
OURS = "+15557654321"
THEIRS = "+15550001234"
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def route(store: ConversationStore, team: str = "T1", channel: str = "C1") -> None:
    """Route OURS of AC to `channel` in `team`."""
    await store.add_route(new_route(team_id=team, number=OURS, channel_id=channel, account_sid=AC))


async def test_a_route_is_replaced_listed_and_removed_per_workspace(db: Database) -> None:
    """Routing a number again moves it; only its workspace sees and removes it."""
    store = ConversationStore(db)
    await route(store, channel="C1")
    await route(store, channel="C2")
    (only,) = await store.routes("T1")
    assert only.channel_id == "C2"
    assert await store.routes("T2") == []
    assert not await store.remove_route("T2", OURS)
    assert (await store.route_for(AC, OURS)) == only
    assert await store.remove_route("T1", OURS)
    assert await store.route_for(AC, OURS) is None


async def test_a_number_routed_by_another_workspace_is_refused(db: Database) -> None:
    """The same number of the same account cannot open threads in two workspaces."""
    store = ConversationStore(db)
    await route(store, team="T1")
    with pytest.raises(RouteTaken):
        await route(store, team="T2")
    assert [r.team_id for r in await store.routes("T1")] == ["T1"]


async def test_an_inbound_text_is_stored_once_per_message_sid(db: Database) -> None:
    """A second delivery of the same MessageSid stores nothing."""
    store = ConversationStore(db)
    text = new_inbound(
        account_sid=AC, our_number=OURS, their_number=THEIRS, body="hi <!channel>", received_at=AT
    )
    first = await store.record_inbound(text)
    assert first is not None and first.state == "received" and first.body == "hi <!channel>"
    assert await store.record_inbound(text) is None
    assert [r.message_sid for r in await store.unposted_inbound()] == [first.message_sid]
    await store.mark_unrouted(first.message_sid)
    assert await store.unposted_inbound() == []
    assert await store.unrouted_count([AC]) == 1
    assert await store.unrouted_count(["AC" + "2" * 32]) == 0


async def test_conversations_open_touch_close_and_opt_out(db: Database) -> None:
    """A conversation finds its thread; closing is per workspace and once."""
    store = ConversationStore(db)
    conv = await open_conversation(
        store, account_sid=AC, our_number=OURS, their_number=THEIRS, profile_name="Ann", at=AT
    )
    await store.set_thread(conv.id, "1700000000.000100")
    await store.touch(conv.id, AT + timedelta(hours=1))
    found = await store.by_thread("T1", "C1", "1700000000.000100")
    assert found is not None and found.last_at == AT + timedelta(hours=1) and found.profile_name == "Ann"
    assert await store.by_thread("T2", "C1", "1700000000.000100") is None
    assert not await store.close("T2", conv.id, "U2", AT)
    assert await store.close("T1", conv.id, "U1", AT)
    assert not await store.close("T1", conv.id, "U1", AT)
    await store.set_opted_out(conv.id, True)
    latest = await store.latest("T1", OURS, THEIRS)
    assert latest is not None and latest.closed_at is not None and latest.opted_out


async def test_events_and_replies_are_recorded_once(db: Database) -> None:
    """An event_id is first once; a reply is found by the SID it made."""
    store = ConversationStore(db)
    assert await store.first_event("Ev1", "T1")
    assert not await store.first_event("Ev1", "T1")
    assert await store.forget_events(datetime.now(UTC) - timedelta(days=1)) == 0
    assert await store.forget_events(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await store.first_event("Ev1", "T1")
    await store.record_reply(key="k", team_id="T1", conversation_id=1, channel_id="C1", message_ts="1.2")
    await store.record_reply(key="k", team_id="T1", conversation_id=1, channel_id="C1", message_ts="1.2")
    await store.settle_reply("k", status="sent", message_sid="SM" + "b" * 32)
    reply = await store.reply_by_sid("SM" + "b" * 32)
    assert reply is not None and reply.message_ts == "1.2" and reply.status == "sent"

"""Two-way conversations, as the team sees them: routes, texts in threads, replies going out as SMS."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from conversation_helpers import (
    OURS,
    PHONE,
    creates,
    inbound_form,
    message_event,
    post_event,
    post_form,
    roots,
    route_ops,
    text_in,
    thread,
)
from harness import OTHER_ACCOUNT_SID, Stack, buttons, card_text, initial_values, start_stack, stop_stack

from bot.sandbox.slack import GENERAL_ID, MEMBER_ID, OPS_ID, PRIVATE_ID, TEAM_ID
from bot.sandbox.twilio import Fault


async def test_an_admin_routes_a_number_and_everyone_can_list_routes(stack: Stack) -> None:
    """The route card names number and channel; `routes` lists it; a member may not route."""
    await route_ops(stack)
    card = card_text(stack.last_card(GENERAL_ID))
    assert OURS in card and f"<#{OPS_ID}>" in card
    await stack.command("routes", user_id=MEMBER_ID)
    listing = stack.ephemeral_texts(MEMBER_ID)[-1]
    assert f"{OURS} → <#{OPS_ID}>" in listing
    resp = await stack.command("route +15557654321 <#C0GENERAL|general>", user_id=MEMBER_ID)
    assert "Only workspace admins" in str(resp.body)
    await stack.command(f"unroute {OURS}")
    await stack.command("routes")
    assert "No number is routed yet" in stack.ephemeral_texts()[-1]


async def test_a_text_opens_a_thread_and_later_texts_join_it(stack: Stack) -> None:
    """The first text posts a root card and the text in its thread; the second joins the same thread."""
    await route_ops(stack)
    await text_in(stack, "hello <!channel> *bold*", ProfileName="Ann")
    await text_in(stack, "second")
    (root,) = roots(stack)
    root_text = card_text(root)
    assert PHONE in root_text and "Ann" in root_text and OURS in root_text and "main" in root_text
    assert "//" in root_text  # the help line says notes stay internal
    assert set(buttons(root)) == {"conversation_close", "reopen_modal:send"}
    texts = [card_text(m) for m in thread(stack, root["ts"])]
    assert len(texts) == 2
    assert "hello &lt;!channel&gt; *bold*" in texts[0] and "Received" in texts[0]
    assert "<!channel>" not in texts[0]
    assert "second" in texts[1]


async def test_a_text_delivered_twice_is_shown_once(stack: Stack) -> None:
    """Twilio's retry of the same MessageSid adds nothing to the thread."""
    await route_ops(stack)
    form = inbound_form("only once")
    for _ in range(3):
        status, content_type, body = await post_form(stack, form)
        assert (status, content_type) == (200, "text/xml") and "<Response/>" in body
    await stack.settle()
    (root,) = roots(stack)
    assert len(thread(stack, root["ts"])) == 1


async def test_unsigned_wrongly_signed_and_unknown_account_texts_get_403(stack: Stack) -> None:
    """Nothing is posted or stored for a request Twilio did not sign with a stored account's token."""
    await route_ops(stack)
    form = inbound_form("forged")
    assert (await post_form(stack, form, signature=""))[0] == 403
    assert (await post_form(stack, form, signature="bm90IGl0"))[0] == 403
    assert (await post_form(stack, form, token="some-other-token"))[0] == 403
    other = inbound_form("other account", AccountSid=OTHER_ACCOUNT_SID)
    assert (await post_form(stack, other, token=stack.other_token))[0] == 403
    await stack.settle()
    assert roots(stack) == []
    assert await stack.runtime.stores.conversations.unposted_inbound() == []


async def test_a_text_to_an_unrouted_number_is_stored_and_counted(stack: Stack) -> None:
    """No thread opens; `/twilio routes` says one text arrived unrouted."""
    await text_in(stack, "anyone there?")
    assert roots(stack) == []
    await stack.command("routes")
    assert "1 text arrived for numbers with no route" in stack.ephemeral_texts()[-1]


async def test_closing_a_conversation_makes_the_next_text_open_a_new_linked_thread(stack: Stack) -> None:
    """Close updates the root card; the next text opens a new thread that links the earlier one."""
    await route_ops(stack)
    await text_in(stack, "first")
    (first,) = roots(stack)
    await stack.click(first, "conversation_close", channel_id=OPS_ID)
    assert "Closed" in card_text(stack.slack.message(OPS_ID, first["ts"]))
    await text_in(stack, "again")
    old, new = roots(stack)
    assert old["ts"] == first["ts"]
    assert "Earlier conversation" in card_text(new)
    (again,) = thread(stack, new["ts"])
    assert "again" in card_text(again)


async def test_an_idle_conversation_ends_after_the_idle_days(stack: Stack) -> None:
    """A text eight days after the last one opens a new thread."""
    await route_ops(stack)
    await text_in(stack, "monday")
    stack.twilio.clock.advance(timedelta(days=8))
    await text_in(stack, "next week")
    assert len(roots(stack)) == 2


async def test_texts_keep_their_order_while_slack_rate_limits(stack: Stack) -> None:
    """Under repeated 429s every text appears once, in the order Twilio delivered them."""
    await route_ops(stack)
    stack.slack.inject("chat.postMessage", status=429, retry_after=0, times=10)
    bodies = [f"part {n}" for n in range(6)]
    for body in bodies:
        status, _, _ = await post_form(stack, inbound_form(body))
        assert status == 200
    await stack.settle()
    (root,) = roots(stack)
    shown = [card_text(m) for m in thread(stack, root["ts"])]
    assert len(shown) == len(bodies)
    for body, text in zip(bodies, shown, strict=True):
        assert body in text


async def test_a_reply_in_the_thread_is_sent_once_from_our_number(stack: Stack) -> None:
    """The reply goes from our number to theirs; Slack's retries of the event create nothing more."""
    await route_ops(stack)
    await text_in(stack, "hi")
    (root,) = roots(stack)
    event = message_event("Thanks, on it!", thread_ts=root["ts"])
    assert await post_event(stack, event, event_id="EvReply1") == 200
    assert await post_event(stack, event, event_id="EvReply1", retry=1) == 200
    assert await post_event(stack, event, event_id="EvReply1", retry=2) == 200
    sent = creates(stack)
    assert len(sent) == 1
    assert (sent[0]["From"], sent[0]["To"], sent[0]["Body"]) == (OURS, PHONE, "Thanks, on it!")


async def test_notes_bots_edits_and_broadcasts_are_never_sent(stack: Stack) -> None:
    """`//` notes, other bots' posts, edits, deletions, broadcasts and top-level posts make no create."""
    await route_ops(stack)
    await text_in(stack, "hi")
    (root,) = roots(stack)
    ts = root["ts"]
    for event in (
        message_event("// internal: VIP customer", thread_ts=ts),
        message_event("from a bot", thread_ts=ts, bot_id="B0OTHER", subtype="bot_message"),
        message_event("edited", thread_ts=ts, subtype="message_changed"),
        message_event("gone", thread_ts=ts, subtype="message_deleted"),
        message_event("also to channel", thread_ts=ts, subtype="thread_broadcast"),
        message_event("top level", thread_ts=None),
    ):
        assert await post_event(stack, event) == 200
    assert creates(stack) == []


async def test_a_reply_too_long_for_a_text_is_refused_in_the_thread(stack: Stack) -> None:
    """1,601 characters: a notice in the thread, no Twilio call."""
    await route_ops(stack)
    await text_in(stack, "hi")
    (root,) = roots(stack)
    await post_event(stack, message_event("x" * 1601, thread_ts=root["ts"]))
    assert creates(stack) == []
    assert "1,601 characters" in card_text(thread(stack, root["ts"])[-1])


async def test_stop_holds_replies_until_start(stack: Stack) -> None:
    """After STOP a reply is held with a notice and no create; after START replies go out again."""
    await route_ops(stack)
    await text_in(stack, "hi")
    (root,) = roots(stack)
    await text_in(stack, "STOP", OptOutType="STOP")
    assert "texted STOP" in card_text(thread(stack, root["ts"])[-1])
    await post_event(stack, message_event("are you there?", thread_ts=root["ts"]))
    assert creates(stack) == []
    assert "Held, not sent" in card_text(thread(stack, root["ts"])[-1])
    await text_in(stack, "start")
    await post_event(stack, message_event("welcome back", thread_ts=root["ts"]))
    assert [c["Body"] for c in creates(stack)] == ["welcome back"]


async def test_a_reply_in_another_workspace_never_uses_this_ones_thread(stack: Stack) -> None:
    """The same channel and thread ts from another team is not a conversation there: nothing is sent."""
    await route_ops(stack)
    await text_in(stack, "hi")
    (root,) = roots(stack)
    await post_event(stack, message_event("cross-team", thread_ts=root["ts"]), team_id="T0OTHERTEAM")
    assert creates(stack) == []


async def test_a_signed_form_without_its_fields_is_answered_and_logged_not_failed(stack: Stack) -> None:
    """A signed form missing From is answered with empty TwiML, stores nothing and posts nothing."""
    await route_ops(stack)
    form = inbound_form("no sender")
    del form["From"]
    status, content_type, _ = await post_form(stack, form)
    assert (status, content_type) == (200, "text/xml")
    await stack.settle()
    assert roots(stack) == []


async def test_a_hundred_kilobyte_body_is_shown_cut_not_lost(stack: Stack) -> None:
    """A huge body is stored and shown cut to fit, with its length."""
    await route_ops(stack)
    await text_in(stack, "y" * 100_000)
    (root,) = roots(stack)
    (shown,) = thread(stack, root["ts"])
    assert "characters; cut to fit" in card_text(shown)


async def test_a_reply_retried_after_a_restart_is_not_sent_again(tmp_path: Path) -> None:
    """The reply's key is in the database: Slack's retry to a new process creates nothing."""
    first = await start_stack(tmp_path / "bot.db")
    try:
        await route_ops(first)
        await text_in(first, "hi")
        (root,) = roots(first)
        event = message_event("sent before the restart", thread_ts=root["ts"])
        await post_event(first, event, event_id="EvRestart")
        assert len(creates(first)) == 1
    finally:
        await stop_stack(first)
    second = await start_stack(tmp_path / "bot.db", with_account=False)
    try:
        assert await post_event(second, event, event_id="EvRestart", retry=1) == 200
        assert creates(second) == []
    finally:
        await stop_stack(second)


async def test_a_route_to_an_unknown_account_label_is_refused(stack: Stack) -> None:
    """`--account nope` names the labels this workspace has, and routes nothing."""
    await stack.command(f"route {OURS} <#{OPS_ID}|ops> --account nope")
    assert "no Twilio account labelled 'nope'" in stack.ephemeral_texts()[-1]
    assert await stack.runtime.stores.conversations.routes(TEAM_ID) == []


async def test_a_reply_twilio_refuses_says_why_in_the_thread(stack: Stack) -> None:
    """Twilio's 21610 (they unsubscribed) comes back as a sentence in the thread; nothing is retried."""
    await route_ops(stack)
    await text_in(stack, "hi", from_="+15005550004")
    (root,) = roots(stack)
    await post_event(stack, message_event("hello?", thread_ts=root["ts"]))
    assert len(creates(stack)) == 1
    said = card_text(thread(stack, root["ts"])[-1])
    assert "Twilio did not send this reply" in said and "21610" in said


async def test_a_text_for_a_channel_the_bot_cannot_post_in_is_kept(stack: Stack) -> None:
    """The bot is not in the private channel: the text is stored as failed and logged, not lost."""
    await stack.command(f"route {OURS} <#{PRIVATE_ID}|private-team>")
    sid = await text_in(stack, "into the void")
    row = await stack.runtime.db.fetch_one(
        "SELECT state, body FROM inbound_messages WHERE message_sid = ?", [sid]
    )
    assert row == {"state": "failed", "body": "into the void"}
    await stack.command("routes")
    assert "1 text could not be shown in the routed channel" in stack.ephemeral_texts()[-1]


async def test_an_attachment_whose_link_is_not_twilios_is_noted_and_the_text_kept(stack: Stack) -> None:
    """The credentials never leave for another host: a note with its type, and the text still shown."""
    await route_ops(stack)
    await text_in(
        stack,
        "see photo",
        NumMedia="1",
        MediaUrl0="https://media.example.com/photo.jpg",
        MediaContentType0="image/jpeg",
    )
    (root,) = roots(stack)
    text, note = (card_text(m) for m in thread(stack, root["ts"]))
    assert "see photo" in text and "1 attachment(s) below" in text
    assert "Attachment 1 (image/jpeg) is not shown" in note and "not on Twilio's API host" in note


async def test_replies_in_one_thread_reach_twilio_in_the_order_written(stack: Stack) -> None:
    """The first reply's create is told to retry (429): the later ones wait for it and go out in order."""
    await route_ops(stack)
    await text_in(stack, "hi")
    (root,) = roots(stack)
    stack.twilio.inject(
        Fault("status", method="POST", path_contains="/Messages.json", status=429, retry_after=0.2)
    )
    for n in range(4):
        await post_event(stack, message_event(f"reply {n}", thread_ts=root["ts"]), wait=False)
    await stack.settle()
    accepted = [
        dict(r.form)["Body"]
        for r in stack.twilio.requests
        if r.path.endswith("/Messages.json") and r.method == "POST" and r.status == 201
    ]
    assert accepted == [f"reply {n}" for n in range(4)]


PUBLIC = "https://bridge.example.com"


def slack_file(stack: Stack, file_id: str = "F0PHOTO1", size: int = 2048) -> dict[str, object]:
    """A file as a message event carries it (its private URL on the Slack stand-in's host)."""
    origin = stack.settings.slack_api_url.split("/api/")[0]
    return {
        "id": file_id,
        "name": "photo.png",
        "mimetype": "image/png",
        "size": size,
        "url_private": f"{origin}/files-pri/{file_id}/photo.png",
    }


async def test_a_reply_with_a_file_goes_out_through_a_sealed_expiring_link(make_stack: Any) -> None:
    """The MMS names PUBLIC_URL/media/…; the link works for an hour, and an altered one never."""
    stack = await make_stack(public_url=PUBLIC)
    await route_ops(stack)
    await text_in(stack, "send me the photo")
    (root,) = roots(stack)
    event = message_event("here it is", thread_ts=root["ts"], subtype="file_share", files=[slack_file(stack)])
    await post_event(stack, event)
    (create,) = [r for r in stack.twilio.requests if r.path.endswith("/Messages.json") and r.method == "POST"]
    (link,) = [v for k, v in create.form if k == "MediaUrl"]
    assert link.startswith(f"{PUBLIC}/media/") and "files-pri" not in link
    path = link.removeprefix(PUBLIC)
    async with aiohttp.ClientSession() as session:
        async with session.get(stack.bot_url + path) as resp:
            assert resp.status == 502  # the link is good; the Slack stand-in does not serve files yet
        async with session.get(stack.bot_url + path[:-3] + "abc") as resp:
            assert resp.status == 404
        stack.twilio.clock.advance(timedelta(hours=1, minutes=1))
        async with session.get(stack.bot_url + path) as resp:
            assert resp.status == 404 and "expired" in await resp.text()


async def test_a_file_reply_without_public_url_is_refused_in_the_thread(stack: Stack) -> None:
    """No PUBLIC_URL: no link can be made, so nothing is sent and the thread says why."""
    await route_ops(stack)
    await text_in(stack, "hi")
    (root,) = roots(stack)
    event = message_event("photo", thread_ts=root["ts"], subtype="file_share", files=[slack_file(stack)])
    await post_event(stack, event)
    assert creates(stack) == []
    assert "PUBLIC_URL is not set" in card_text(thread(stack, root["ts"])[-1])


async def test_files_above_five_megabytes_are_refused(make_stack: Any) -> None:
    """6 MB of attachments: refused in the thread, no Twilio call."""
    stack = await make_stack(public_url=PUBLIC)
    await route_ops(stack)
    await text_in(stack, "hi")
    (root,) = roots(stack)
    big = slack_file(stack, size=6 * 1024 * 1024)
    await post_event(stack, message_event("big", thread_ts=root["ts"], subtype="file_share", files=[big]))
    assert creates(stack) == []
    assert "6.0 MB" in card_text(thread(stack, root["ts"])[-1])


async def test_media_links_that_are_not_the_bots_get_404(make_stack: Any) -> None:
    """Garbage, overlong and non-ASCII tokens are answered 404 with a sentence, never a 500."""
    stack = await make_stack(public_url=PUBLIC)
    async with aiohttp.ClientSession() as session:
        for token in ("x", "A" * 5000, "%C3%A9t%C3%A9", "gAAAAA" + "b" * 100):
            async with session.get(f"{stack.bot_url}/media/{token}") as resp:
                assert resp.status == 404, token
                assert "unknown or has expired" in await resp.text()


async def test_texts_not_yet_shown_when_the_bot_stops_are_shown_after_the_restart(tmp_path: Path) -> None:
    """Slack is down until shut-down: the stored texts wait, and the next start shows them, in order."""
    first = await start_stack(tmp_path / "bot.db", shutdown_timeout=0.2)
    try:
        await route_ops(first)
        first.slack.inject("chat.postMessage", status=503, times=1000)
        for body in ("one", "two", "three"):
            status, _, _ = await post_form(first, inbound_form(body))
            assert status == 200
    finally:
        await stop_stack(first)
    second = await start_stack(tmp_path / "bot.db", with_account=False)
    try:
        await second.settle()
        (root,) = roots(second)
        shown = [card_text(m) for m in thread(second, root["ts"])]
        assert len(shown) == 3
        assert all(body in text for body, text in zip(("one", "two", "three"), shown, strict=True))
    finally:
        await stop_stack(second)


async def test_send_a_text_on_the_root_card_opens_the_form_prefilled(stack: Stack) -> None:
    """The button opens the send form with their number, our number and the account filled in."""
    await route_ops(stack)
    await text_in(stack, "hi")
    (root,) = roots(stack)
    await stack.click(root, "reopen_modal:send", channel_id=OPS_ID)
    values = initial_values(stack.opened_view())
    assert (values["to"], values["from"]) == (PHONE, OURS)

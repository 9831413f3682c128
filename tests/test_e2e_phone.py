"""A customer's phone and the team's thread, through both simulators: Twilio delivers the texts (signed, to
the number's SmsUrl) and Slack delivers the people's messages in the thread as events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
from conversation_helpers import OURS, roots, thread
from harness import Stack, buttons, card_text

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, OPS_ID, SimFile
from bot.sandbox.twilio import AUTO_REPLIES, SERVICE_NUMBER, InboundMedia

PHONE = "+15550002222"
MakeStack = Callable[..., Awaitable[Stack]]


async def public_stack(make_stack: MakeStack) -> Stack:
    """A bot that knows its own address (PUBLIC_URL), with our number routed to #ops and pointed at it."""
    stack = await make_stack(live_status=True)
    await stack.command(f"route {OURS} <#{OPS_ID}|ops>")
    stack.twilio.set_sms_url(OURS, f"{stack.settings.public_url}/twilio/inbound")
    return stack


async def phone_texts(stack: Stack, body: str = "", **extra: Any) -> None:
    """The customer's phone texts our number; waits until the bot has shown it."""
    await stack.twilio.receive_text(PHONE, OURS, body, **extra)
    await stack.settle()


def received(stack: Stack) -> list[str]:
    """What the customer's phone received from the team through our number (not Twilio's own STOP
    and START answers), oldest first."""
    automatic = set(AUTO_REPLIES.values())
    return [
        m["body"]
        for m in stack.twilio.phone_messages(PHONE)
        if m.get("from") == OURS and m["body"] not in automatic
    ]


async def test_the_route_card_points_the_number_at_the_bot_after_a_confirm(make_stack: MakeStack) -> None:
    """The card shows where texts go today; the button (with its confirm) sets SmsUrl to the bot."""
    stack = await make_stack(live_status=True)
    public = stack.settings.public_url
    stack.twilio.set_sms_url(OURS, "https://old.example.com/sms")
    await stack.command(f"route {OURS} <#{OPS_ID}|ops>")
    card = stack.last_card(GENERAL_ID)
    assert "https://old.example.com/sms" in card_text(card)
    button = buttons(card)["route_point_here"]
    dialog = button["confirm"]["text"]["text"]
    assert f"{public}/twilio/inbound" in dialog and "https://old.example.com/sms" in dialog
    await stack.click(card, "route_point_here")
    assert stack.twilio.phone_number(OURS)["sms_url"] == f"{public}/twilio/inbound"
    updated = stack.slack.message(GENERAL_ID, card["ts"])
    assert "(here)" in card_text(updated) and "route_point_here" not in buttons(updated)


async def test_a_messaging_service_number_says_its_url_is_on_the_service(stack: Stack) -> None:
    """No button for a number in a Messaging Service: the service's inbound URL decides."""
    await stack.command(f"route {SERVICE_NUMBER} <#{OPS_ID}|ops>")
    card = stack.last_card(GENERAL_ID)
    assert "Messaging Service" in card_text(card) and "route_point_here" not in buttons(card)


async def test_a_whole_conversation_from_the_phone_and_the_thread(make_stack: MakeStack) -> None:
    """Text in, reply out, a note kept inside, STOP holds a reply, START lets the next one go."""
    stack = await public_stack(make_stack)
    await phone_texts(stack, "Hi, my order is late")
    (root,) = roots(stack)
    ts = root["ts"]
    assert "Hi, my order is late" in card_text(thread(stack, ts)[0])

    answer = await stack.slack.post_message(OPS_ID, "Sorry! It ships today.", user=ADMIN_ID, thread_ts=ts)
    await stack.settle()
    assert received(stack) == ["Sorry! It ships today."]
    assert "outbox_tray" in stack.slack.reactions_on(OPS_ID, answer["ts"])

    await stack.slack.post_message(OPS_ID, "// they ordered twice last month", user=ADMIN_ID, thread_ts=ts)
    await stack.settle()
    assert received(stack) == ["Sorry! It ships today."]

    await phone_texts(stack, "STOP")
    assert "texted STOP" in card_text(thread(stack, ts)[-1])
    await stack.slack.post_message(OPS_ID, "Are you still there?", user=ADMIN_ID, thread_ts=ts)
    await stack.settle()
    assert "Held, not sent" in card_text(thread(stack, ts)[-1])
    assert received(stack) == ["Sorry! It ships today."]

    await phone_texts(stack, "START")
    await stack.slack.post_message(OPS_ID, "Welcome back", user=ADMIN_ID, thread_ts=ts)
    await stack.settle()
    assert received(stack) == ["Sorry! It ships today.", "Welcome back"]
    # Twilio answered STOP and START itself; the bot created only the two replies.
    assert len(stack.twilio.creates()) == 2
    assert len(roots(stack)) == 1


async def test_twilio_delivering_a_text_twice_shows_it_once(make_stack: MakeStack) -> None:
    """Twilio's redelivery of the same MessageSid adds nothing to the thread."""
    stack = await public_stack(make_stack)
    text = await stack.twilio.receive_text(PHONE, OURS, "just once")
    await stack.twilio.redeliver(text.message_sid)
    await stack.settle()
    (root,) = roots(stack)
    assert len(thread(stack, root["ts"])) == 1


async def test_slack_retrying_a_reply_event_sends_one_text(make_stack: MakeStack) -> None:
    """Slack sends the same event again (its answer was lost): the phone gets one text."""
    stack = await public_stack(make_stack)
    await phone_texts(stack, "hello")
    (root,) = roots(stack)
    stack.slack.force_event_retry(times=2)
    await stack.slack.post_message(OPS_ID, "only one of me", user=ADMIN_ID, thread_ts=root["ts"])
    await stack.slack.settle_events()
    await stack.settle()
    assert len(stack.slack.event_deliveries) >= 3
    assert received(stack) == ["only one of me"]


async def test_edits_deletions_and_broadcasts_send_nothing(make_stack: MakeStack) -> None:
    """Changing or removing a reply, or also sending it to the channel, makes no new text."""
    stack = await public_stack(make_stack)
    await phone_texts(stack, "hello")
    (root,) = roots(stack)
    reply = await stack.slack.post_message(OPS_ID, "first version", user=ADMIN_ID, thread_ts=root["ts"])
    await stack.settle()
    await stack.slack.edit_message(OPS_ID, reply["ts"], "second version")
    await stack.slack.delete_message(OPS_ID, reply["ts"])
    await stack.slack.post_message(OPS_ID, "to all", user=ADMIN_ID, thread_ts=root["ts"], broadcast=True)
    await stack.settle()
    assert received(stack) == ["first version"]


async def test_a_picture_texted_in_is_uploaded_into_the_thread(make_stack: MakeStack) -> None:
    """The MMS is fetched with the account's credentials, the storage redirect without, and uploaded."""
    stack = await public_stack(make_stack)
    picture = b"\x89PNG\r\n\x1a\n" + b"p" * 500
    await phone_texts(stack, "look", media=[InboundMedia("image/png", picture)])
    (root,) = roots(stack)
    fetches = [(f.where, f.authorization) for f in stack.twilio.media_fetches]
    assert fetches == [("api", True), ("cdn", False)]
    files = [m for m in thread(stack, root["ts"]) if m.get("files")]
    assert len(files) == 1
    assert stack.slack.file_bytes(files[0]["files"][0]["id"]) == picture


async def test_a_hanging_attachment_leaves_a_note_and_the_text(make_stack: MakeStack) -> None:
    """A media fetch that never answers times out: the text is shown and a note names the type."""
    stack = await make_stack(twilio_timeout=0.5)
    await stack.command(f"route {OURS} <#{OPS_ID}|ops>")
    stack.twilio.set_sms_url(OURS, f"{stack.bot_url}/twilio/inbound")
    await stack.twilio.receive_text(PHONE, OURS, "video", media=[InboundMedia("video/mp4", b"v", hang=True)])
    await stack.settle()
    (root,) = roots(stack)
    shown = [card_text(m) for m in thread(stack, root["ts"])]
    assert "video" in shown[0]
    assert "Attachment 1 (video/mp4) is not shown" in shown[-1]


async def test_a_file_in_a_reply_reaches_the_phone_through_a_link_to_the_bot(make_stack: MakeStack) -> None:
    """The MMS names PUBLIC_URL/media/…, and that link serves the Slack file's bytes."""
    stack = await public_stack(make_stack)
    await phone_texts(stack, "send me the form")
    (root,) = roots(stack)
    pdf = b"%PDF-1.4 " + b"f" * 300
    await stack.slack.post_message(
        OPS_ID, "here", user=ADMIN_ID, thread_ts=root["ts"], files=[SimFile("form.pdf", pdf)]
    )
    await stack.settle()
    (create,) = stack.twilio.creates()
    (link,) = [v for k, v in create.form if k == "MediaUrl"]
    assert link.startswith(f"{stack.settings.public_url}/media/")
    async with aiohttp.ClientSession() as session, session.get(link) as resp:
        assert resp.status == 200 and await resp.read() == pdf


async def test_a_whatsapp_number_routes_and_replies_the_same_way(make_stack: MakeStack) -> None:
    """whatsapp: numbers: the root card shows the profile name, and the reply goes back on WhatsApp."""
    stack = await make_stack(live_status=True)
    stack.twilio.set_sms_url(OURS, f"{stack.settings.public_url}/twilio/inbound")
    await stack.command(f"route whatsapp:{OURS} <#{OPS_ID}|ops>")
    await stack.twilio.receive_text(f"whatsapp:{PHONE}", f"whatsapp:{OURS}", "hola", profile_name="Ana")
    await stack.settle()
    (root,) = roots(stack)
    assert "Ana" in card_text(root) and f"whatsapp:{PHONE}" in card_text(root)
    await stack.slack.post_message(OPS_ID, "¡Hola Ana!", user=ADMIN_ID, thread_ts=root["ts"])
    await stack.settle()
    (create,) = stack.twilio.creates()
    form = dict(create.form)
    assert (form["From"], form["To"], form["Body"]) == (f"whatsapp:{OURS}", f"whatsapp:{PHONE}", "¡Hola Ana!")


async def test_a_burst_under_slacks_real_rate_limit_arrives_whole_and_in_order(make_stack: MakeStack) -> None:
    """Three phones, four texts each at once, Slack at 10 posts/s a channel: each thread gets its own texts,
    once each, in the order sent, after the 429s are waited out."""
    stack = await public_stack(make_stack)
    stack.slack.enable_rate_limits(post_per_second=10.0, post_burst=3)
    phones = ["+15550003001", "+15550003002", "+15550003003"]
    for n in range(4):
        for phone in phones:
            await stack.twilio.receive_text(phone, OURS, f"{phone} #{n}", wait=False)
    await stack.twilio.settle_inbound()
    await stack.settle()
    assert stack.slack.rate_limited, "the burst never met the rate limit"
    threads = {card_text(root).split("Texts from ")[1][:12]: root["ts"] for root in roots(stack)}
    assert sorted(threads) == phones
    for phone, ts in threads.items():
        shown = [card_text(m) for m in thread(stack, ts)]
        assert len(shown) == 4
        for n, text in enumerate(shown):
            assert f"{phone} #{n}" in text


async def test_a_replys_reaction_follows_its_status_to_delivered_or_failed(make_stack: MakeStack) -> None:
    """Twilio's status callbacks swap 📤 for ✅, or for ❌ with the reason in the thread."""
    stack = await public_stack(make_stack)
    unlucky = "+15550000666"  # the simulator never delivers to numbers ending in 0666
    for phone in (PHONE, unlucky):
        await stack.twilio.receive_text(phone, OURS, f"hi from {phone}")
    await stack.settle()
    threads = {card_text(root).split("Texts from ")[1][:12]: root["ts"] for root in roots(stack)}
    answers = {}
    for phone, ts in threads.items():
        answers[phone] = await stack.slack.post_message(OPS_ID, "Thanks!", user=ADMIN_ID, thread_ts=ts)
    await stack.settle()
    assert all("outbox_tray" in stack.slack.reactions_on(OPS_ID, a["ts"]) for a in answers.values())
    stack.twilio.clock.advance(timedelta(seconds=10))
    await stack.twilio.settle_callbacks()
    await stack.settle()
    assert set(stack.slack.reactions_on(OPS_ID, answers[PHONE]["ts"])) == {"white_check_mark"}
    assert set(stack.slack.reactions_on(OPS_ID, answers[unlucky]["ts"])) == {"x"}
    said = card_text(thread(stack, threads[unlucky])[-1])
    assert "Twilio could not deliver this reply" in said

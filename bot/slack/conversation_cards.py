"""Cards of two-way conversations: routes, a thread's root card, each text received. Pure, no I/O."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from bot.conversations import MAX_REPLY, NOTE_PREFIX, Conversation, InboundRow, Route, RouteView
from bot.slack.cards import (
    ACTION_REOPEN,
    Card,
    _actions,
    _button,
    _confirm,
    _context,
    _fallback,
    _fields,
    _header,
    _reopen_value,
    _section,
)
from bot.slack.text import code, literal, safe, slack_date, who

__all__ = [
    "ACTION_CLOSE",
    "ACTION_POINT",
    "inbound_text_card",
    "parse_point_value",
    "root_card",
    "route_card",
    "routes_card",
]

ACTION_CLOSE = "conversation_close"
ACTION_POINT = "route_point_here"
CONSOLE_STEP = (
    "In Twilio's console (Phone Numbers → Manage → Active numbers → the number → Messaging), set "
    "“A message comes in” to Webhook, `https://YOUR-HOST/twilio/inbound`, HTTP POST; or set PUBLIC_URL "
    "and use this card's button."
)


def _where_texts_go(view: RouteView) -> str:
    number = view.number
    if number is None:
        return f"Could not look the number up at Twilio: {safe(view.lookup_problem or 'unknown', 500)}."
    if number.service_sid:
        return (
            f"This number belongs to Messaging Service {code(number.service_sid, 40)}: its incoming texts go "
            "to the service's inbound URL, set on the service in Twilio's console, not on the number."
        )
    if not number.sms_url:
        return "Twilio sends this number's incoming texts nowhere yet."
    here = " (here)" if view.inbound_url and number.sms_url == view.inbound_url else ""
    url = code(number.sms_url, 400)
    return f"Twilio sends this number's incoming texts to {url} ({number.sms_method}){here}."


def route_card(view: RouteView, *, requested_by: str) -> Card:
    """A route: where the number's texts open threads, and where Twilio sends them today."""
    route = view.route
    blocks = [
        _header(f"📥 Texts to {route.number} open threads"),
        _section(
            f"Each person who texts {safe(route.number, 40)} gets a thread in <#{route.channel_id}>; "
            f"replies in the thread go back to them as SMS. Set by {who(requested_by)}."
        ),
        _section(_where_texts_go(view)),
    ]
    number = view.number
    if (
        view.inbound_url
        and number is not None
        and not number.service_sid
        and number.sms_url != view.inbound_url
    ):
        replaces = number.sms_url or "nothing (no URL is set)"
        value = json.dumps({"number": route.number}, separators=(",", ":"))
        confirm = _confirm(
            "Point this number here?",
            safe(
                f"Twilio will send texts to {route.number} to {view.inbound_url} (POST). This replaces "
                f"{replaces}.",
                300,
            ),
            "Point it here",
            "Cancel",
        )
        blocks.append(_actions([_button("Point this number here", ACTION_POINT, value, confirm=confirm)]))
    elif view.inbound_url is None and (number is None or not number.service_sid):
        blocks.append(_context(CONSOLE_STEP))
    blocks.append(_context(f"Twilio account *{safe(route.account_label, 80)}*"))
    return Card(text=_fallback(f"Texts to {route.number} open threads in the channel."), blocks=tuple(blocks))


def parse_point_value(raw: str) -> str:
    """The number a "Point this number here" button carries; ValueError when unreadable."""
    value = json.loads(raw)
    if not isinstance(value, dict) or not isinstance(value.get("number"), str) or len(value["number"]) > 64:
        raise ValueError("not a point value")
    return str(value["number"])


def routes_card(routes: Sequence[Route], unrouted: int, unshown: int = 0) -> Card:
    """The workspace's routes, how many texts arrived for numbers with none, and how many Slack refused."""
    rows = [
        f"{safe(r.number, 40)} → <#{r.channel_id}> · account *{safe(r.account_label, 80)}*" for r in routes
    ]
    blocks = [_header("Routes"), _section("\n".join(rows) if rows else "No number is routed yet.")]
    if unrouted:
        blocks.append(
            _section(
                f"⚠️ {unrouted} text{'s' if unrouted != 1 else ''} arrived for numbers with no route: stored, "
                "not shown. Route the number with `/twilio route NUMBER #channel`."
            )
        )
    if unshown:
        blocks.append(
            _section(
                f"⚠️ {unshown} text{'s' if unshown != 1 else ''} could not be shown in the routed channel "
                "(is the bot still a member? `/invite @Twilio Bridge`): stored, with the reason in the log."
            )
        )
    blocks.append(_context("`/twilio route NUMBER #channel` adds one; `/twilio unroute NUMBER` removes one."))
    return Card(text=_fallback(f"{len(routes)} route(s)."), blocks=tuple(blocks))


def root_card(conversation: Conversation, *, previous_link: str | None = None) -> Card:
    """The first message of a conversation's thread: who, which number, and how replies work."""
    theirs = safe(conversation.their_number, 60)
    if conversation.profile_name:
        theirs += f" ({safe(conversation.profile_name, 100)})"
    blocks = [
        _header(f"💬 Texts from {conversation.their_number}"),
        _fields(
            [
                f"*From*\n{theirs}",
                f"*To (our number)*\n{safe(conversation.our_number, 60)}",
                f"*Twilio account*\n{safe(conversation.account_label, 80)}",
                f"*Started*\n{slack_date(conversation.opened_at)}",
            ]
        ),
        _context(
            f"Reply in this thread to text them from {safe(conversation.our_number, 60)} "
            f"(up to {MAX_REPLY:,} characters). A reply starting with `{NOTE_PREFIX}` is an internal note "
            "and is never sent."
        ),
    ]
    if previous_link:
        blocks.append(_context(f"<{previous_link}|Earlier conversation with this number>"))
    if conversation.closed_at is not None:
        closed = slack_date(conversation.closed_at)
        blocks.append(_context(f"Closed {closed}: their next text opens a new thread."))
    else:
        prefill = {
            "to": conversation.their_number,
            "from": conversation.our_number,
            "account": conversation.account_label,
        }
        buttons = [_button("Close", ACTION_CLOSE, str(conversation.id))]
        value = _reopen_value("send", prefill)
        if value is not None:
            buttons.append(_button("Send a text", f"{ACTION_REOPEN}:send", value))
        blocks.append(_actions(buttons))
    return Card(text=_fallback(f"Texts from {conversation.their_number}"), blocks=tuple(blocks))


def inbound_text_card(text: InboundRow, *, received_at: datetime | None = None) -> Card:
    """One text in the thread, shown as typed, with the time it arrived."""
    body = text.body
    shown = literal(body, 2900) if body.strip() else "_(no text)_"
    parts = [f"Received {slack_date(received_at or text.received_at)}"]
    if len(body) > 2800:
        parts.append(f"{len(body):,} characters; cut to fit")
    if text.num_media:
        parts.append(f"{text.num_media} attachment(s) below")
    blocks = [_section(shown), _context(" · ".join(parts))]
    return Card(text=_fallback(body or "(no text)"), blocks=tuple(blocks))

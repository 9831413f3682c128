"""Block Kit cards for every outcome: pure functions from results to `Card(text, blocks)`, no I/O.

Every card fits Slack's limits by construction (50 blocks, 3000 characters a section, 150 a header,
75 a button label, 2000 a button value, and about 12,000 characters of blocks in all), and every piece of
text that came from a user, an SMS or Twilio is escaped, so it shows literally and pings nobody.
Mrkdwn text objects carrying such text are `verbatim`, so Slack does not turn `@channel` or `#general`
into live mentions either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from bot.core.errors import InputError
from bot.core.rules import check_account_label
from bot.home import sparkline
from bot.slack.modals import CALLBACKS, PREFILL_KEYS, json_object
from bot.slack.text import code, cut, literal, one_line, safe, slack_date, who
from bot.twilio.errors import hint_for
from bot.twilio.models import Message, MessagePage
from bot.workspace import mask_sid

if TYPE_CHECKING:
    from bot.home import HomeSummary
    from bot.status import CardFacts
    from bot.workspace import AuditEntry, StoredAccount

__all__ = [
    "ACTION_CANCEL",
    "ACTION_DELETE",
    "ACTION_NEXT_PAGE",
    "ACTION_REFRESH",
    "ACTION_REOPEN",
    "MAX_BLOCKS",
    "MAX_BLOCKS_CHARS",
    "MAX_BUTTON_VALUE",
    "STATUS_ICONS",
    "Card",
    "Operation",
    "accounts_card",
    "blocks_size",
    "deleted_card",
    "error_card",
    "help_card",
    "history_card",
    "list_card",
    "log_channel_card",
    "message_card",
    "notice_card",
    "parse_button_value",
    "parse_reopen_value",
    "unknown_outcome_card",
]

ACTION_REFRESH = "refresh_message"
ACTION_CANCEL = "cancel_message"
ACTION_DELETE = "delete_message"
ACTION_NEXT_PAGE = "list_next_page"
ACTION_REOPEN = "reopen_modal"
ACTION_HOME_SETUP = "home_setup"
# The help card's "open a form" buttons: ACTION_REOPEN + ":" + subcommand (one actions block needs
# distinct action_ids); the listener matches both forms.
FORM_SUBCOMMANDS = ("send", "schedule", "list", "fetch", "cancel", "delete")

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_BUTTON_VALUE = 2000
# Slack refuses messages whose blocks add up to about 13,000 characters (msg_blocks_too_long), well below
# its documented limits; cards stay under this, measured as compact JSON.
MAX_BLOCKS_CHARS = 12_000
_BUDGET = 11_500
_MAX_TEXT = 3000

Operation = Literal["send", "schedule", "fetch", "refresh", "cancel"]

STATUS_ICONS: Mapping[str, str] = {
    "queued": "⏳",
    "accepted": "⏳",
    "scheduled": "🗓️",
    "sending": "📤",
    "sent": "✅",
    "delivered": "✅",
    "undelivered": "❌",
    "failed": "❌",
    "canceled": "🚫",
    "receiving": "📥",
    "received": "📥",
    "read": "👀",
    "partially_delivered": "⚠️",
}

_HEADERS: Mapping[str, str] = {
    "send": "Message sent",
    "schedule": "Message scheduled",
    "fetch": "Message",
    "refresh": "Message",
    "cancel": "Message canceled",
}
_VERBS: Mapping[str, str] = {
    "send": "sent this message",
    "schedule": "scheduled this message",
    "fetch": "looked up this message",
    "refresh": "refreshed this message",
    "cancel": "canceled this scheduled message",
}
_MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
_OUTCOME_ICONS: Mapping[str, str] = {"ok": "✅", "error": "❌", "unknown": "⚠️", "rejected": "⛔"}


@dataclass(frozen=True)
class Card:
    """A message ready for chat.postMessage: `text` is the (escaped) notification fallback."""

    text: str
    blocks: tuple[dict[str, Any], ...]


def blocks_size(blocks: Sequence[Mapping[str, Any]]) -> int:
    """How many characters `blocks` take as compact JSON: what Slack's hidden total limit counts."""
    return len(json.dumps(list(blocks), ensure_ascii=False, separators=(",", ":")))


# ---------------------------------------------------------------------------------------------------
# Building blocks


# Plain dicts in the shape slack_sdk's models give (`SectionBlock(...).to_dict()` and so on), checked
# against the same limits: building a message card through the models cost about 0.3 ms, once per send.


def _limit(text: str, most: int, what: str) -> str:
    if len(text) > most:
        raise ValueError(f"{what} must be at most {most} characters, not {len(text)}")
    return text


def _md(text: str, most: int = MAX_SECTION) -> dict[str, Any]:
    return {"text": _limit(text, most, "mrkdwn text"), "type": "mrkdwn", "verbatim": True}


def _plain(text: str, most: int) -> dict[str, Any]:
    return {"emoji": True, "text": _limit(text, most, "plain text"), "type": "plain_text"}


def _header(text: str) -> dict[str, Any]:
    return {"text": _plain(cut(text, MAX_HEADER), MAX_HEADER), "type": "header"}


def _section(text: str) -> dict[str, Any]:
    return {"text": _md(text), "type": "section"}


def _fields(fields: Sequence[str]) -> dict[str, Any]:
    return {"fields": [_md(f, 2000) for f in fields[:10]], "type": "section"}


def _context(*parts: str) -> dict[str, Any]:
    return {"elements": [_md(p) for p in parts if p][:10], "type": "context"}


def _divider() -> dict[str, Any]:
    return {"type": "divider"}


def _confirm(title: str, text: str, confirm: str, deny: str) -> dict[str, Any]:
    """A "danger" confirmation dialog for a button."""
    return {
        "confirm": _plain(confirm, 30),
        "deny": _plain(deny, 30),
        "style": "danger",
        "text": {"text": _limit(text, 300, "confirm text"), "type": "mrkdwn"},
        "title": _plain(title, 100),
    }


def _button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if style not in {None, "primary", "danger"}:
        raise ValueError(f"button style must be primary or danger, not {style!r}")
    button: dict[str, Any] = {"action_id": _limit(action_id, 255, "action_id")}
    if confirm is not None:
        button["confirm"] = confirm
    if style is not None:
        button["style"] = style
    button.update(text=_plain(text, 75), type="button", value=_limit(value, MAX_BUTTON_VALUE, "button value"))
    return button


def _danger_button(
    text: str, action_id: str, value: str, *, title: str, warning: str, confirm: str
) -> dict[str, Any]:
    """A button that undoes something for good, so Slack asks first (and "Keep it" backs out)."""
    dialog = _confirm(title=title, text=warning, confirm=confirm, deny="Keep it")
    return _button(text, action_id, value, style="danger", confirm=dialog)


def _actions(buttons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not 1 <= len(buttons) <= 25:
        raise ValueError(f"an actions block holds 1 to 25 elements, not {len(buttons)}")
    return {"elements": list(buttons), "type": "actions"}


def _compact(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _fallback(text: str) -> str:
    return safe(one_line(text), _MAX_TEXT)


def _date_text(dt: datetime) -> str:
    return slack_date(dt, "{date_short_pretty} {time}")


def _short_date(dt: datetime) -> str:
    return slack_date(dt, "{date_short} {time}")


def _pack(rows: Sequence[str], sep: str) -> list[dict[str, Any]]:
    """Rows joined into as few sections as fit 3000 characters each."""
    sections: list[dict[str, Any]] = []
    current = ""
    for row in rows:
        candidate = f"{current}{sep}{row}" if current else row
        if len(candidate) > MAX_SECTION and current:
            sections.append(_section(current))
            current = row
        else:
            current = candidate
    if current:
        sections.append(_section(current))
    return sections


def _fit(
    head: Sequence[dict[str, Any]],
    rows: Sequence[str],
    tail: Callable[[int], Sequence[dict[str, Any]]],
    *,
    sep: str = "\n",
    budget: int = _BUDGET,
) -> tuple[list[dict[str, Any]], int]:
    """As many rows as fit between `head` and `tail(shown)`; returns the blocks and how many rows made it."""
    rows = [r if len(r) <= MAX_SECTION else "_(too long to show)_" for r in rows]
    fixed = blocks_size(head) + blocks_size(tail(len(rows)))
    section_cost = blocks_size([_section("x")]) - 1
    used = fixed
    shown = 0
    current = 0
    for row in rows:
        cost = len(json.dumps(row, ensure_ascii=False)) - 2
        if current and current + len(sep) + len(row) <= MAX_SECTION:
            cost += len(sep)
            current += len(sep) + len(row)
        else:
            cost += section_cost + 1
            current = len(row)
        if used + cost > budget:
            break
        used += cost
        shown += 1
    while True:
        blocks = [*head, *_pack(rows[:shown], sep), *tail(shown)]
        if (blocks_size(blocks) <= budget and len(blocks) <= MAX_BLOCKS) or shown == 0:
            return blocks, shown
        shown -= 1


# ---------------------------------------------------------------------------------------------------
# Button values


def _message_value(sid: str, account: str) -> str | None:
    value = _compact({"sid": sid, "account": account})
    return value if len(value) <= MAX_BUTTON_VALUE else None


def parse_button_value(raw: str) -> dict[str, str]:
    """Read a message button's value back: `{"sid": "SM…", "account": "label"}`, or InputError.

    Strict, because a value that is not exactly what `message_card` wrote is not ours to act on.
    """
    data = _json_object(raw)
    if set(data) != {"sid", "account"}:
        raise InputError("That button is not one of ours: its value has the wrong keys.")
    sid, account = data["sid"], data["account"]
    if not isinstance(sid, str) or not _MESSAGE_SID.fullmatch(sid):
        raise InputError("That button does not carry a message SID.")
    if not isinstance(account, str):
        raise InputError("That button does not carry an account label.")
    try:
        label = check_account_label(account)
    except InputError:
        raise InputError("That button does not carry an account label.") from None
    if label != account:  # message_card writes labels as stored
        raise InputError("That button does not carry an account label.")
    return {"sid": sid, "account": account}


def parse_reopen_value(raw: str) -> tuple[str, dict[str, str]]:
    """Read an "Edit and try again" button's value back: `(subcommand, prefill)`, or InputError."""
    data = _json_object(raw)
    if set(data) != {"cmd", "prefill"}:
        raise InputError("That button is not one of ours: its value has the wrong keys.")
    cmd, prefill = data["cmd"], data["prefill"]
    if not isinstance(cmd, str) or cmd not in CALLBACKS:
        raise InputError("That button names no form we have.")
    if not isinstance(prefill, dict):
        raise InputError("That button's form values are not readable.")
    clean: dict[str, str] = {}
    for key, value in prefill.items():
        if key not in PREFILL_KEYS or not isinstance(value, str):
            raise InputError("That button's form values are not readable.")
        clean[key] = value
    return cmd, clean


def _json_object(raw: object) -> dict[str, Any]:
    return json_object(
        raw,
        MAX_BUTTON_VALUE,
        missing="That button's value is missing or too long.",
        unreadable="That button's value is not readable.",
    )


def _reopen_value(subcommand: str, prefill: Mapping[str, str]) -> str | None:
    """The reopen button's value, cut to 2000 characters: the body is shortened, other long fields dropped."""
    if subcommand not in CALLBACKS:
        return None
    kept = {k: v for k, v in prefill.items() if k in PREFILL_KEYS and isinstance(v, str) and v}

    def encoded(values: Mapping[str, str]) -> str:
        return _compact({"cmd": subcommand, "prefill": dict(values)})

    if len(encoded(kept)) <= MAX_BUTTON_VALUE:
        return encoded(kept)
    if "body" in kept:
        body = kept["body"]
        low, high = 0, len(body)
        while low < high:  # the longest cut of the body that fits
            mid = (low + high + 1) // 2
            if len(encoded({**kept, "body": cut(body, mid)})) <= MAX_BUTTON_VALUE:
                low = mid
            else:
                high = mid - 1
        if low > 0:
            kept["body"] = cut(body, low)
        else:
            del kept["body"]
    while len(encoded(kept)) > MAX_BUTTON_VALUE and kept:
        del kept[max(kept, key=lambda k: len(kept[k]))]
    return encoded(kept)


# ---------------------------------------------------------------------------------------------------
# Cards


def _status(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '❔')} {safe(status, 40)}"


def _price(price: Decimal, unit: str | None) -> str:
    amount = format(price.normalize(), "f")
    return f"{amount} {safe(unit.upper(), 10)}" if unit else amount


def message_card(facts: CardFacts, *, changed_at: datetime | None = None) -> Card:
    """One message: who asked, To/From, status, SID, segments, price, time, Twilio's error, the body, buttons.

    `facts.operation` is one of `Operation`; `facts.send_at` is the scheduled time (Twilio's message JSON
    does not carry it); `facts.note` is plain words and is escaped. "Cancel" appears only while the message
    is scheduled. `changed_at` is when the status last changed, for a card kept live by Twilio's status
    callbacks.
    """
    msg, requested_by, account_label = facts.message, facts.requested_by, facts.account_label
    operation, note, send_at = facts.operation, facts.note, facts.send_at
    header = _HEADERS.get(operation, "Message")
    fields = [f"*To*\n{safe(msg.to, 200) or '—'}"]
    if msg.from_:
        fields.append(f"*From*\n{safe(msg.from_, 200)}")
    if msg.messaging_service_sid:
        fields.append(f"*Messaging Service*\n{code(msg.messaging_service_sid, 60)}")
    if not msg.from_ and not msg.messaging_service_sid:
        fields.append("*From*\n—")
    fields.append(f"*Status*\n{_status(msg.status)}")
    fields.append(f"*SID*\n{code(msg.sid, 80)}")
    if msg.num_segments is not None:
        fields.append(f"*Segments*\n{msg.num_segments}")
    if msg.num_media:
        fields.append(f"*Media*\n{msg.num_media}")
    if msg.price is not None:
        fields.append(f"*Price*\n{_price(msg.price, msg.price_unit)}")
    if send_at is not None:
        fields.append(f"*Scheduled for*\n{_date_text(send_at)}")
    elif msg.date_sent is not None:
        fields.append(f"*Sent*\n{_date_text(msg.date_sent)}")
    elif msg.date_created is not None:
        fields.append(f"*Created*\n{_date_text(msg.date_created)}")

    blocks: list[dict[str, Any]] = [
        _header(header),
        _section(f"{who(requested_by)} {_VERBS.get(operation, 'asked about this message')}"),
        _fields(fields),
    ]
    if msg.error_code is not None or msg.error_message:
        code_text = f" {msg.error_code}" if msg.error_code is not None else ""
        detail = safe(msg.error_message or hint_for(msg.error_code) or "no details given", 1000)
        more = (
            f" <https://www.twilio.com/docs/api/errors/{msg.error_code}|What this means>"
            if msg.error_code is not None
            else ""
        )
        blocks.append(_section(f"❌ *Twilio error{code_text}*: {detail}{more}"))
    if note:
        blocks.append(_section(f"ℹ️ {safe(note, 1000)}"))
    prefix = "*Body*\n"
    body = literal(msg.body, MAX_SECTION - len(prefix)) if msg.body else "_(no text)_"
    blocks.append(_section(prefix + body))
    live = f"Status updated {_date_text(changed_at)}" if changed_at is not None else ""
    blocks.append(_context(f"Twilio account *{safe(account_label, 80)}*", live))

    value = _message_value(msg.sid, account_label)
    if value is not None:
        buttons = [_button("Refresh status", ACTION_REFRESH, value)]
        if msg.status == "scheduled":
            buttons.append(
                _danger_button(
                    "Cancel",
                    ACTION_CANCEL,
                    value,
                    title="Cancel this message?",
                    warning="Twilio will not send it. This cannot be undone.",
                    confirm="Cancel message",
                )
            )
        buttons.append(
            _danger_button(
                "Delete",
                ACTION_DELETE,
                value,
                title="Delete message?",
                warning="Delete this message from Twilio? This cannot be undone.",
                confirm="Delete",
            )
        )
        blocks.append(_actions(buttons))

    text = f"{header} to {msg.to}: {msg.status} ({msg.sid})"
    return Card(text=_fallback(text), blocks=tuple(blocks))


def _list_row(msg: Message) -> str:
    if msg.from_:
        sender = safe(msg.from_, 60)
    elif msg.messaging_service_sid:
        sender = f"via {code(mask_sid(msg.messaging_service_sid), 20)}"
    else:
        sender = "—"
    when = msg.date_sent or msg.date_created
    parts = [f"{code(msg.sid, 40)} {_status(msg.status)}", f"{sender} → {safe(msg.to, 60)}"]
    if when is not None:
        parts.append(_short_date(when))
    preview = one_line(msg.body)
    if preview:
        parts.append(safe(preview, 60))
    return " · ".join(parts)


def list_card(
    page: MessagePage,
    *,
    requested_by: str,
    account_label: str,
    filters: str,
    next_value: str | None,
    title: str = "Messages",
) -> Card:
    """One page of messages, one line each, as many as fit; a "Next page" button carrying `next_value`.

    `next_value` is the Next page button's value as the caller wrote it (≤ 2000 characters; a longer one is
    left out with a note, so the card still posts). `filters` is plain words and is escaped.
    """
    total = len(page.messages)
    head = [
        _header(title),
        _context(
            f"{who(requested_by)} · Twilio account *{safe(account_label, 80)}*",
            f"Filters: {safe(filters, 300) or 'none'}",
        ),
    ]
    if total == 0:
        blocks = [*head, _section("No messages match.")]
        return Card(text=_fallback(f"{title}: no messages match."), blocks=tuple(blocks))

    usable = next_value if next_value and len(next_value) <= MAX_BUTTON_VALUE else None

    def tail(shown: int) -> list[dict[str, Any]]:
        notes = [
            f"Showing {shown} of {total} on this page: narrow the filters or use a smaller --limit "
            "to see the rest."
            if shown < total
            else f"{total} message{'s' if total != 1 else ''} on this page."
        ]
        if next_value and usable is None:
            notes.append(
                "More messages exist, but the link to them is too long for a button: narrow the filters."
            )
        out = [_context(*notes)]
        if usable is not None:
            out.append(_actions([_button("Next page", ACTION_NEXT_PAGE, usable)]))
        return out

    blocks, shown = _fit(head, [_list_row(m) for m in page.messages], tail)
    return Card(text=_fallback(f"{title}: showing {shown} of {total} on this page."), blocks=tuple(blocks))


def deleted_card(sid: str, *, requested_by: str, account_label: str) -> Card:
    """A message deleted from Twilio's logs."""
    blocks = [
        _header("Message deleted"),
        _section(
            f"{who(requested_by)} deleted {code(sid, 80)} from Twilio account *{safe(account_label, 80)}*. "
            "Twilio no longer has its body or its status."
        ),
    ]
    return Card(text=_fallback(f"Message {sid} deleted from Twilio."), blocks=tuple(blocks))


def error_card(
    *,
    title: str,
    sentence: str,
    requested_by: str,
    reopen: tuple[str, Mapping[str, str]] | None = None,
) -> Card:
    """What failed, in plain words; with `reopen=(subcommand, prefill)` an "Edit and try again" button.

    The button's value holds only form fields that are never secret, cut to 2000 characters.
    """
    blocks = [
        _header(f"⚠️ {title}"),
        _section(safe(sentence, MAX_SECTION)),
        _context(f"Requested by {who(requested_by)}"),
    ]
    if reopen is not None:
        value = _reopen_value(*reopen)
        if value is not None:
            blocks.append(_actions([_button("Edit and try again", ACTION_REOPEN, value, style="primary")]))
    return Card(text=_fallback(f"{title}: {sentence}"), blocks=tuple(blocks))


def notice_card(sentence: str) -> Card:
    """One plain sentence from the bot (escaped)."""
    return Card(text=_fallback(sentence), blocks=(_section(safe(sentence, MAX_SECTION)),))


def log_channel_card(*, set_by: str) -> Card:
    """The notice posted in a new log channel; posting it also proves the bot may post there."""
    blocks = [
        _section(
            f"📒 {who(set_by)} made this channel the Twilio log: a copy of every Twilio card from this "
            "workspace will be posted here."
        )
    ]
    return Card(text="This channel is now the Twilio log.", blocks=tuple(blocks))


def unknown_outcome_card(*, to: str, body: str, requested_by: str, account_label: str, detail: str) -> Card:
    """A send that Twilio never confirmed: it may or may not have gone out, and nothing was re-sent."""
    blocks = [
        _header("⚠️ Outcome unknown"),
        _section(
            f"Twilio did not confirm the message {who(requested_by)} sent to {safe(to, 200)}, so nothing was "
            f"re-sent. It may have gone out: check with {code(f'/twilio list --to {to}', 300)} before "
            "sending it again."
        ),
        _section("*Body*\n" + (literal(body, 2000) if body else "_(no text)_")),
        _context(f"Twilio account *{safe(account_label, 80)}*", f"Detail: {safe(detail, 1000)}"),
    ]
    text = f"Outcome unknown: Twilio did not confirm the message to {to}; nothing was re-sent."
    return Card(text=_fallback(text), blocks=tuple(blocks))


def _account_row(account: StoredAccount) -> str:
    default = " (default)" if account.is_default else ""
    auth = f"API key {code(mask_sid(account.api_key_sid), 20)}" if account.api_key_sid else "Auth Token"
    line1 = f"*{safe(account.label, 80)}*{default} · {code(mask_sid(account.account_sid), 20)} · {auth}"
    extras = []
    if account.default_from:
        extras.append(f"From {safe(account.default_from, 60)}")
    if account.default_service_sid:
        extras.append(f"Messaging Service {code(mask_sid(account.default_service_sid), 20)}")
    extras.append(f"added by {who(account.added_by)} {_short_date(account.added_at)}")
    return f"{line1}\n{' · '.join(extras)}"


def accounts_card(accounts: Sequence[StoredAccount]) -> Card:
    """This workspace's Twilio accounts: labels, masked SIDs and defaults; never a secret."""
    head = [_header("Twilio accounts")]
    if not accounts:
        blocks = [
            *head,
            _section("No Twilio account is set up yet. An admin can add one with `/twilio setup`."),
        ]
        return Card(text="No Twilio account is set up yet.", blocks=tuple(blocks))

    def tail(shown: int) -> list[dict[str, Any]]:
        more = f" Showing {shown} of {len(accounts)}." if shown < len(accounts) else ""
        return [
            _context(f"Use `--account LABEL` to pick one; admins change them with `/twilio setup`.{more}")
        ]

    blocks, _ = _fit(head, [_account_row(a) for a in accounts], tail, sep="\n\n")
    n = len(accounts)
    return Card(text=f"{n} Twilio account{'s' if n != 1 else ''}.", blocks=tuple(blocks))


def _history_row(entry: AuditEntry) -> str:
    outcome = str(entry.outcome)
    parts = [
        _short_date(entry.at),
        who(entry.user_id),
        f"*{safe(entry.operation, 30)}*",
    ]
    if entry.account_label:
        parts.append(f"on {safe(entry.account_label, 40)}")
    parts.append(f"{_OUTCOME_ICONS.get(outcome, '•')} {safe(outcome, 20)}")
    if entry.message_sid:
        parts.append(code(entry.message_sid, 40))
    if entry.error_code is not None:
        parts.append(f"error {entry.error_code}")
    if entry.summary:
        parts.append(safe(one_line(entry.summary), 100))
    return " · ".join(parts)


def history_card(entries: Sequence[AuditEntry]) -> Card:
    """Recent operations in this workspace, newest first as given, as many as fit."""
    head = [_header("Recent Twilio activity")]
    if not entries:
        return Card(text="No Twilio activity yet.", blocks=(*head, _section("No Twilio activity yet.")))

    def tail(shown: int) -> list[dict[str, Any]]:
        return [_context(f"Showing {shown} of {len(entries)}.")] if shown < len(entries) else []

    blocks, shown = _fit(head, [_history_row(e) for e in entries], tail)
    return Card(text=f"Recent Twilio activity: {shown} entries.", blocks=tuple(blocks))


LIVE_ON = "Message cards update by themselves as Twilio reports delivery (live status is on)."
LIVE_OFF = (
    "Message cards show the status Twilio gave when they were posted; press Refresh status for news. "
    "To have them update by themselves, an admin sets PUBLIC_URL to the bot's public address "
    "(README: Live delivery status)."
)


def help_card(
    usage: Mapping[str, str],
    descriptions: Mapping[str, str],
    *,
    unknown: str | None = None,
    live_status: bool | None = None,
) -> Card:
    """Every subcommand with its usage line and what it does; `unknown` is a subcommand we did not know.

    `live_status` adds whether cards update by themselves, and how to turn that on.
    """
    head = [_header("Twilio commands")]
    if unknown is not None:
        head.append(_section(f"There is no {code(f'/twilio {unknown}', 80)} command. These are:"))
    rows = []
    for name, line in usage.items():
        shown = line if line.startswith("/") else f"/twilio {line}"
        description = descriptions.get(name, "")
        rows.append(f"{code(shown, 300)}" + (f"\n{safe(description, 500)}" if description else ""))

    # A form for each Twilio command, also for `list`, whose arguments are all optional.
    forms = [sub for sub in FORM_SUBCOMMANDS if sub in usage]

    def tail(shown: int) -> list[dict[str, Any]]:
        return [
            _divider(),
            _context(
                "A command without its required parts opens a form. Numbers: +15551234567 or whatsapp:+1…",
                "" if live_status is None else (LIVE_ON if live_status else LIVE_OFF),
            ),
            _actions(
                [
                    _button(
                        f"{sub.capitalize()}…",
                        f"{ACTION_REOPEN}:{sub}",
                        _compact({"cmd": sub, "prefill": {}}),
                    )
                    for sub in forms
                ]
            ),
        ]

    blocks, _ = _fit(head, rows, tail, sep="\n\n")
    return Card(text="Twilio commands: " + ", ".join(safe(n, 40) for n in usage), blocks=tuple(blocks))


def home_view(
    summary: HomeSummary, *, viewer: str, is_admin: bool, listed_admins: Sequence[str]
) -> dict[str, Any]:
    """The Home tab of one workspace for one person (a `views.publish` view)."""
    blocks: list[dict[str, Any]] = [_header("Twilio for this workspace")]
    if summary.accounts:
        rows = [
            f"• *{safe(a.label, 40)}* {code(mask_sid(a.account_sid), 20)}"
            + (" (default)" if a.is_default else "")
            + (f" · from {code(a.default_from, 40)}" if a.default_from else "")
            for a in summary.accounts[:20]
        ]
        blocks.append(_section("*Twilio accounts*\n" + "\n".join(rows)))
    else:
        blocks.append(_section("*Twilio accounts*\nNone yet: an admin connects one with `/twilio setup`."))
    if summary.routes:
        rows = [
            f"• {code(r.number, 40)} → <#{r.channel_id}> (account *{safe(r.account_label, 40)}*)"
            for r in summary.routes[:20]
        ]
        more = len(summary.routes) - 20
        tail = f"\n…and {more} more: `/twilio routes` lists them all." if more > 0 else ""
        blocks.append(_section("*Routes* (texts to these numbers open threads)\n" + "\n".join(rows) + tail))
    else:
        blocks.append(_section("*Routes*\nNone yet: texts to your numbers are not shown in any channel."))
    if is_admin:
        blocks.append(
            _context(
                "Route a number with `/twilio route +15557654321 #channel`; `/twilio unroute` removes one."
            )
        )
    blocks.append(_divider())
    blocks.append(_section("*Sends, last 7 days* (UTC)\n" + _week_chart(summary)))
    if summary.errors:
        rows = [f"• *{e.count}×* error {e.code}: {safe(e.words, 400)}" for e in summary.errors]
        blocks.append(_section("*Most frequent Twilio errors this week*\n" + "\n".join(rows)))
    else:
        blocks.append(_section("*Most frequent Twilio errors this week*\nNone."))
    blocks.append(_divider())
    if summary.mine:
        blocks.append(_section("*Your last operations*\n" + "\n".join(_history_row(e) for e in summary.mine)))
    else:
        blocks.append(_section(f"*Your last operations*\nNothing yet, {who(viewer)}. Try `/twilio help`."))
    if is_admin:
        blocks.append(
            _actions([_button("Set up a Twilio account…", ACTION_HOME_SETUP, "setup", style="primary")])
        )
    else:
        admins = sorted({*listed_admins, *summary.account_admins})
        names = ", ".join(who(a) for a in admins[:10])
        whom = f": {names}" if names else ""
        blocks.append(_context(f"Changes to the set-up are made by the workspace's admins and owners{whom}."))
    return {"type": "home", "blocks": blocks}


def _week_chart(summary: HomeSummary) -> str:
    """Three sparklines (sent, failed, other), one column a day, with the week's totals."""
    days = summary.days
    lines = ["          " + " ".join(d.day.strftime("%a")[:2] for d in days)]
    for name in ("sent", "failed", "other"):
        values = [int(getattr(d, name)) for d in days]
        bars = " ".join(f"{ch} " for ch in sparkline(values))
        lines.append(f"{name:<9} {bars} {sum(values)}")
    chart = "\n".join(lines)
    span = f"{days[0].day:%d %b} – {days[-1].day:%d %b}"
    return f"```{chart}```\n{span}: sent = accepted by Twilio, other = outcome unknown."

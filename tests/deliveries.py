"""Hand-made Slack deliveries: signed (or badly signed) POSTs, repeats of what Slack sent, and what users saw.

The Slack simulator builds and signs real payloads; these helpers, with `signing.post`, send them again (a
Slack retry, a double delivery, a second replica) or send ones Slack never would (forged, stale, garbled).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from harness import Stack, json_text

from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, SlackSimulator

TABLES = ("accounts", "outbox", "audit")
TRACEBACK_MARKERS = ("Traceback", 'File "/', '.py", line ', "<module>")


def interaction(payload: Mapping[str, Any] | str) -> bytes:
    """An interactivity body: `payload=<JSON>` (a str is sent as it is, for garbage)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return urlencode({"payload": text}).encode()


def last_body(slack: SlackSimulator, kind: str) -> bytes:
    """The exact body of the simulator's latest delivery of `kind` (to send it again)."""
    found = [d for d in slack.deliveries if d.kind == kind]
    assert found, f"no {kind} delivered yet"
    return found[-1].body


def changed(body: bytes, **fields: str) -> bytes:
    """A form body (a slash command) with some fields replaced: a new trigger_id makes a new action."""
    form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    form.update(fields)
    return urlencode(form).encode()


def outcomes(stack: Stack, *, user_id: str = ADMIN_ID, channel_id: str = GENERAL_ID) -> list[str]:
    """Every result a user saw: cards in the channel and messages to them alone, except command acks."""
    seen = [
        str(m.get("text") or "") + "\n" + json_text(m.get("blocks") or []) for m in stack.cards(channel_id)
    ]
    for eph in stack.slack.ephemerals:
        if eph.get("user") == user_id and eph.get("source") != "ack":
            seen.append(str(eph.get("text") or "") + "\n" + json_text(eph.get("blocks") or []))
    return seen


def slack_visible_text(slack: SlackSimulator) -> str:
    """Everything the bot put where a Slack user could read it: messages, ephemerals, views, answers."""
    parts: list[str] = []
    for call in slack.calls:
        parts.append(json.dumps(call.args, ensure_ascii=False))
    for eph in slack.ephemerals:
        parts.append(json.dumps(eph, ensure_ascii=False))
    for delivery in slack.deliveries:
        parts.append(delivery.response.body)
    return "\n".join(parts)


async def db_snapshot(stack: Stack) -> list[str]:
    """The bot's whole database as SQL text, to show a request changed nothing."""
    return await stack.runtime.db.run(lambda db: list(db.conn.iterdump()))


async def row_counts(stack: Stack) -> dict[str, int]:
    """How many accounts, outbox rows and audit entries the bot has."""

    def count(db: Any) -> dict[str, int]:
        return {t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # noqa: S608

    return await stack.runtime.db.run(count)


def looks_like_a_traceback(text: str) -> bool:
    """Whether `text` shows Python internals to the user."""
    return any(marker in text for marker in TRACEBACK_MARKERS)

"""Routes, conversations, inbound texts, replies and handled Slack events, on either engine.

A route belongs to one workspace: every read that a person triggers is filtered by `team_id`. Texts
are looked up by the account and number Twilio names, which together belong to at most one route.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import Database, Transaction, iso, utc_now
from storage.rows import from_row, params

__all__ = [
    "Conversation",
    "ConversationStore",
    "InboundRow",
    "NewInbound",
    "NewRoute",
    "Reply",
    "Route",
    "RouteTaken",
]


class RouteTaken(Exception):
    """The number of that account is routed by another workspace."""


@dataclass(frozen=True, kw_only=True)
class NewRoute:
    """Texts to `number` of account `account_sid` open threads in `channel_id`: what `add_route` takes."""

    team_id: str
    number: str
    channel_id: str
    account_label: str
    account_sid: str
    created_by: str


@dataclass(frozen=True, kw_only=True)
class Route(NewRoute):
    """A stored route."""

    id: int
    created_at: datetime


@dataclass(frozen=True)
class Conversation:
    """One thread with one person: our number, theirs, and where the thread is."""

    id: int
    team_id: str
    channel_id: str
    account_label: str
    account_sid: str
    our_number: str
    their_number: str
    profile_name: str | None
    thread_ts: str | None
    previous_id: int | None
    opened_at: datetime
    last_at: datetime
    closed_at: datetime | None
    opted_out: bool


@dataclass(frozen=True, kw_only=True)
class NewInbound:
    """A text Twilio delivered, to store once: what `ConversationStore.record_inbound` takes."""

    message_sid: str
    account_sid: str
    our_number: str
    their_number: str
    body: str
    profile_name: str | None
    opt_out_type: str | None
    num_media: int
    received_at: datetime
    # (MediaUrl, MediaContentType) of each attachment, in Twilio's order.
    media: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True, kw_only=True)
class InboundRow(NewInbound):
    """A text as stored: `state` is received, posted, unrouted or failed."""

    id: int
    team_id: str | None
    state: str
    conversation_id: int | None
    media: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reply:
    """A Slack message sent as a text: where it is, and the Twilio message it made."""

    key: str
    team_id: str
    conversation_id: int
    channel_id: str
    message_ts: str
    message_sid: str | None
    status: str


def _inbound(row: Mapping[str, Any]) -> InboundRow:
    return from_row(InboundRow, row, media=_media(row["media_json"]))


def _media(text: object) -> tuple[tuple[str, str], ...]:
    items = json.loads(str(text or "[]"))
    return tuple((str(url), str(kind)) for url, kind in items)


_ROUTE = (
    "SELECT id, team_id, number, channel_id, account_label, account_sid, created_by, created_at FROM routes "
)
_CONVERSATION = "SELECT * FROM conversations "
_INBOUND = (
    "SELECT id, message_sid, account_sid, team_id, our_number, their_number, body, profile_name, "
    "opt_out_type, num_media, media_json, received_at, state, conversation_id FROM inbound_messages "
)


class ConversationStore:
    """Read and change routes, conversations, inbound texts and replies."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ── routes ──────────────────────────────────────────────────────────────────────────────────────

    async def add_route(self, route: NewRoute) -> Route:
        """Route `route.number` to its channel, replacing this workspace's route of the same number.

        Raises RouteTaken when another workspace routes that number of that account.
        """
        team_id, number, account_sid = route.team_id, route.number, route.account_sid
        async with self._db.transaction() as tx:
            await tx.lock(f"routes:{account_sid}:{number}")
            other = await tx.fetch_one(
                "SELECT team_id FROM routes WHERE account_sid = ? AND number = ? AND team_id <> ?",
                [account_sid, number, team_id],
            )
            if other is not None:
                raise RouteTaken(number)
            row = await tx.fetch_one(
                "INSERT INTO routes (team_id, number, channel_id, account_label, account_sid, created_by, "
                "created_at) VALUES (:team_id, :number, :channel_id, :account_label, :account_sid, "
                ":created_by, :created_at) ON CONFLICT (team_id, number) DO UPDATE SET "
                "channel_id = excluded.channel_id, account_label = excluded.account_label, "
                "account_sid = excluded.account_sid, created_by = excluded.created_by, "
                "created_at = excluded.created_at RETURNING id",
                params(route, created_at=utc_now()),
            )
            assert row is not None
            stored = await tx.fetch_one(_ROUTE + "WHERE id = ?", [row["id"]])
        assert stored is not None
        return from_row(Route, stored)

    async def routes(self, team_id: str) -> list[Route]:
        """The workspace's routes, by number."""
        rows = await self._db.fetch_all(_ROUTE + "WHERE team_id = ?", [team_id])
        return sorted((from_row(Route, row) for row in rows), key=lambda r: r.number.encode())

    async def remove_route(self, team_id: str, number: str) -> bool:
        """Remove the workspace's route of `number`; True if there was one."""
        return bool(
            await self._db.execute("DELETE FROM routes WHERE team_id = ? AND number = ?", [team_id, number])
        )

    async def route_for(self, account_sid: str, number: str) -> Route | None:
        """The route of our `number` of account `account_sid`, whichever workspace owns it."""
        row = await self._db.fetch_one(_ROUTE + "WHERE account_sid = ? AND number = ?", [account_sid, number])
        return None if row is None else from_row(Route, row)

    # ── inbound texts ───────────────────────────────────────────────────────────────────────────────

    async def record_inbound(self, text: NewInbound) -> InboundRow | None:
        """Store a text once per MessageSid; None when that MessageSid was stored before."""
        row = await self._db.fetch_one(
            "INSERT INTO inbound_messages (message_sid, account_sid, our_number, their_number, body, "
            "profile_name, opt_out_type, num_media, media_json, received_at, state) "
            "VALUES (:message_sid, :account_sid, :our_number, :their_number, :body, :profile_name, "
            ":opt_out_type, :num_media, :media_json, :received_at, 'received') "
            "ON CONFLICT (message_sid) DO NOTHING RETURNING id",
            params(
                text,
                leave_out={"media"},
                media_json=json.dumps([list(item) for item in text.media]),
                received_at=iso(text.received_at),
            ),
        )
        if row is None:
            return None
        found = await self._db.fetch_one(_INBOUND + "WHERE id = ?", [row["id"]])
        assert found is not None
        return _inbound(found)

    async def mark_posted(
        self, message_sid: str, *, team_id: str, conversation_id: int, posted_ts: str
    ) -> None:
        """The text is shown in its conversation's thread, as the Slack message `posted_ts`."""
        await self._db.execute(
            "UPDATE inbound_messages SET state = 'posted', team_id = ?, conversation_id = ?, posted_ts = ? "
            "WHERE message_sid = ?",
            [team_id, conversation_id, posted_ts, message_sid],
        )

    async def mark_unrouted(self, message_sid: str) -> None:
        """The text came to a number no route names: kept, and counted for the admins, never shown."""
        await self._db.execute(
            "UPDATE inbound_messages SET state = 'unrouted' WHERE message_sid = ?", [message_sid]
        )

    async def mark_failed(self, message_sid: str, *, team_id: str) -> None:
        """Slack refused the text for good; counted against `team_id`, whose route it had."""
        await self._db.execute(
            "UPDATE inbound_messages SET state = 'failed', team_id = ? WHERE message_sid = ?",
            [team_id, message_sid],
        )

    async def unposted_inbound(self) -> list[InboundRow]:
        """Texts received but not yet handled (a process stopped meanwhile), oldest first."""
        rows = await self._db.fetch_all(_INBOUND + "WHERE state = 'received' ORDER BY id")
        return [_inbound(row) for row in rows]

    async def unrouted_count(self, account_sids: Sequence[str]) -> int:
        """How many texts to numbers of these accounts arrived with no route."""
        total = 0
        for sid in account_sids:
            row = await self._db.fetch_one(
                "SELECT COUNT(*) AS n FROM inbound_messages WHERE state = 'unrouted' AND account_sid = ?",
                [sid],
            )
            total += int(row["n"]) if row is not None else 0
        return total

    async def unshown_count(self, team_id: str) -> int:
        """How many of the workspace's routed texts Slack refused to show (the bot left the channel…)."""
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM inbound_messages WHERE state = 'failed' AND team_id = ?", [team_id]
        )
        return int(row["n"]) if row is not None else 0

    # ── conversations ───────────────────────────────────────────────────────────────────────────────

    async def latest(self, team_id: str, our_number: str, their_number: str) -> Conversation | None:
        """The newest conversation between these two numbers in the workspace, open or not."""
        row = await self._db.fetch_one(
            _CONVERSATION
            + "WHERE team_id = ? AND our_number = ? AND their_number = ? ORDER BY id DESC LIMIT 1",
            [team_id, our_number, their_number],
        )
        return None if row is None else from_row(Conversation, row)

    async def get(self, team_id: str, conversation_id: int) -> Conversation | None:
        """The workspace's conversation by id."""
        row = await self._db.fetch_one(
            _CONVERSATION + "WHERE team_id = ? AND id = ?", [team_id, conversation_id]
        )
        return None if row is None else from_row(Conversation, row)

    async def by_thread(self, team_id: str, channel_id: str, thread_ts: str) -> Conversation | None:
        """The workspace's conversation whose thread this is."""
        row = await self._db.fetch_one(
            _CONVERSATION + "WHERE team_id = ? AND channel_id = ? AND thread_ts = ?",
            [team_id, channel_id, thread_ts],
        )
        return None if row is None else from_row(Conversation, row)

    async def open(
        self,
        *,
        team_id: str,
        channel_id: str,
        account_label: str,
        account_sid: str,
        our_number: str,
        their_number: str,
        profile_name: str | None,
        previous_id: int | None,
        at: datetime,
    ) -> Conversation:
        """Start a conversation (its thread is set once the root card is posted)."""
        row = await self._db.fetch_one(
            "INSERT INTO conversations (team_id, channel_id, account_label, account_sid, our_number, "
            "their_number, profile_name, previous_id, opened_at, last_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            [
                team_id,
                channel_id,
                account_label,
                account_sid,
                our_number,
                their_number,
                profile_name,
                previous_id,
                iso(at),
                iso(at),
            ],
        )
        assert row is not None
        return from_row(Conversation, row)

    async def set_thread(self, conversation_id: int, thread_ts: str) -> None:
        """The root card is posted: its ts names the thread."""
        await self._db.execute(
            "UPDATE conversations SET thread_ts = ? WHERE id = ?", [thread_ts, conversation_id]
        )

    async def touch(self, conversation_id: int, at: datetime, profile_name: str | None = None) -> None:
        """A text arrived in the conversation at `at`."""
        await self._db.execute(
            "UPDATE conversations SET last_at = ?, profile_name = COALESCE(?, profile_name) WHERE id = ?",
            [iso(at), profile_name, conversation_id],
        )

    async def close(self, team_id: str, conversation_id: int, closed_by: str, at: datetime) -> bool:
        """Close the workspace's conversation; False if it was closed already or is not theirs."""
        return bool(
            await self._db.execute(
                "UPDATE conversations SET closed_at = ?, closed_by = ? "
                "WHERE team_id = ? AND id = ? AND closed_at IS NULL",
                [iso(at), closed_by, team_id, conversation_id],
            )
        )

    async def set_opted_out(self, conversation_id: int, opted_out: bool) -> None:
        """Mark the conversation opted out (STOP) or back in (START)."""
        await self._db.execute(
            "UPDATE conversations SET opted_out = ? WHERE id = ?", [1 if opted_out else 0, conversation_id]
        )

    # ── replies and events ──────────────────────────────────────────────────────────────────────────

    async def first_event(self, event_id: str, team_id: str) -> bool:
        """True the first time `event_id` is seen; False for a retry of it."""
        row = await self._db.fetch_one(
            "INSERT INTO slack_events (event_id, team_id, seen_at) VALUES (?, ?, ?) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            [event_id, team_id, utc_now()],
        )
        return row is not None

    async def forget_events(self, before: datetime) -> int:
        """Drop handled event_ids older than `before` (Slack stops retrying after minutes); how many."""
        return await self._db.execute("DELETE FROM slack_events WHERE seen_at < ?", [iso(before)])

    async def record_reply(
        self, *, key: str, team_id: str, conversation_id: int, channel_id: str, message_ts: str
    ) -> None:
        """Note that a Slack message is being sent as a text (before the Twilio call)."""
        await self._db.execute(
            "INSERT INTO replies (key, team_id, conversation_id, channel_id, message_ts, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, 'sending', ?) ON CONFLICT (key) DO NOTHING",
            [key, team_id, conversation_id, channel_id, message_ts, utc_now()],
        )

    async def settle_reply(self, key: str, *, status: str, message_sid: str | None = None) -> None:
        """The reply's Twilio outcome."""
        await self._db.execute(
            "UPDATE replies SET status = ?, message_sid = COALESCE(?, message_sid) WHERE key = ?",
            [status, message_sid, key],
        )

    async def advance_reply(self, message_sid: str, *, status: str, only_from: Sequence[str]) -> Reply | None:
        """Move the reply of `message_sid` to `status` if it is now at one of `only_from`; the reply, or None
        when there is none or it was already further (callbacks come late and twice)."""
        if not only_from:
            return None
        marks = ", ".join("?" for _ in only_from)
        changed = await self._db.execute(
            f"UPDATE replies SET status = ? WHERE message_sid = ? AND status IN ({marks})",  # noqa: S608
            [status, message_sid, *only_from],
        )
        return await self.reply_by_sid(message_sid) if changed else None

    async def reply_by_sid(self, message_sid: str) -> Reply | None:
        """The reply that made Twilio message `message_sid`."""
        row = await self._db.fetch_one("SELECT * FROM replies WHERE message_sid = ?", [message_sid])
        return None if row is None else from_row(Reply, row)


@dataclass(frozen=True)
class ConversationsForgotten:
    """What forgetting a workspace deleted of its conversations."""

    routes: int
    conversations: int


async def forget_team(tx: Transaction, team_id: str) -> ConversationsForgotten:
    """Delete a workspace's routes, threads, replies, the texts it was shown and its seen event ids,
    inside the caller's transaction (an uninstall, with its tokens and accounts)."""
    routes = await tx.execute("DELETE FROM routes WHERE team_id = ?", [team_id])
    await tx.execute("DELETE FROM replies WHERE team_id = ?", [team_id])
    await tx.execute("DELETE FROM inbound_messages WHERE team_id = ?", [team_id])
    await tx.execute("DELETE FROM slack_events WHERE team_id = ?", [team_id])
    conversations = await tx.execute("DELETE FROM conversations WHERE team_id = ?", [team_id])
    return ConversationsForgotten(max(routes, 0), max(conversations, 0))


async def forget_org(tx: Transaction, enterprise_id: str | None) -> ConversationsForgotten:
    """Delete the routes and conversations of an org's accounts (an org-wide uninstall), before those
    accounts are deleted in the same transaction."""
    params = [enterprise_id]
    routes = await tx.execute(
        "DELETE FROM routes WHERE account_sid IN (SELECT account_sid FROM accounts WHERE enterprise_id = ?)",
        params,
    )
    await tx.execute(
        "DELETE FROM replies WHERE conversation_id IN (SELECT id FROM conversations WHERE account_sid IN "
        "(SELECT account_sid FROM accounts WHERE enterprise_id = ?))",
        params,
    )
    await tx.execute(
        "DELETE FROM inbound_messages WHERE account_sid IN "
        "(SELECT account_sid FROM accounts WHERE enterprise_id = ?)",
        params,
    )
    conversations = await tx.execute(
        "DELETE FROM conversations WHERE account_sid IN "
        "(SELECT account_sid FROM accounts WHERE enterprise_id = ?)",
        params,
    )
    return ConversationsForgotten(max(routes, 0), max(conversations, 0))

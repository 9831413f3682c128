"""The Home tab: the week's sends by day and outcome, top errors in plain words, the view per role."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from builders import new_route

from bot.home import Home, HomeSummary, sparkline
from bot.slack import cards
from storage.accounts import AccountStore, NewAccount
from storage.audit import AuditLog
from storage.conversations import ConversationStore
from storage.db import Database, iso

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
SID = "AC" + "0123456789abcdef" * 2


async def _entry(
    db: Database,
    *,
    at: datetime,
    team: str = "T1",
    user: str = "U1",
    operation: str = "send",
    outcome: str = "ok",
    code: int | None = None,
    message: str | None = None,
) -> None:
    await db.execute(
        "INSERT INTO audit (at, team_id, user_id, channel_id, operation, summary, outcome, error_code, "
        "error_message) VALUES (?, ?, ?, 'C1', ?, '', ?, ?, ?)",
        [iso(at), team, user, operation, outcome, code, message],
    )


def test_sparkline_scales_to_the_largest_and_blanks_zero() -> None:
    """0 is a blank, the largest is a full bar, 1 of 8 the lowest bar."""
    assert sparkline([0, 1, 4, 8]) == " ▁▄█"
    assert sparkline([0, 0]) == "  "
    assert sparkline([3]) == "█"


async def test_summary_counts_the_week_by_day_and_outcome(db: Database) -> None:
    """Seven UTC days to today; ok = sent, error or rejected = failed, unknown = other; one team only."""
    today = NOW.replace(hour=9)
    await _entry(db, at=today)
    await _entry(db, at=today, operation="schedule")
    await _entry(db, at=today - timedelta(days=1), outcome="error", code=21211)
    await _entry(db, at=today - timedelta(days=1), outcome="rejected")
    await _entry(db, at=today - timedelta(days=6), outcome="unknown")
    await _entry(db, at=today - timedelta(days=7))  # eight days ago: outside the week
    await _entry(db, at=today, team="T2")  # another workspace
    await _entry(db, at=today, operation="fetch")  # not a send
    home = Home(accounts=AccountStore(db), audit=AuditLog(db), now=lambda: NOW)
    summary = await home.summary("T1", "U1")
    assert [d.day for d in summary.days] == [NOW.date() - timedelta(days=n) for n in range(6, -1, -1)]
    assert [(d.sent, d.failed, d.other) for d in summary.days] == [
        (0, 0, 1),
        (0, 0, 0),
        (0, 0, 0),
        (0, 0, 0),
        (0, 0, 0),
        (0, 2, 0),
        (2, 0, 0),
    ]


async def test_top_errors_are_the_five_most_frequent_in_plain_words(db: Database) -> None:
    """Most frequent first; a known code gets our hint, an unknown one Twilio's cleaned words."""
    for code, times in ((21211, 3), (21608, 5), (49999, 2), (21610, 1), (21614, 1), (21617, 4)):
        for _ in range(times):
            await _entry(db, at=NOW, outcome="error", code=code, message="Something Twilio has no hint for")
    home = Home(accounts=AccountStore(db), audit=AuditLog(db), now=lambda: NOW)
    errors = (await home.summary("T1", "U1")).errors
    assert [(e.code, e.count) for e in errors] == [(21608, 5), (21617, 4), (21211, 3), (49999, 2), (21610, 1)]
    assert errors[0].words.startswith("This is a Twilio trial account")
    assert errors[3].words == "Twilio said: Something Twilio has no hint for"


async def test_the_viewers_own_operations_only(db: Database) -> None:
    """`mine` holds the viewer's last five entries in this workspace, newest first."""
    for n in range(7):
        await _entry(db, at=NOW - timedelta(minutes=n), user="U1", operation=f"op{n}")
    await _entry(db, at=NOW, user="U2", operation="theirs")
    home = Home(accounts=AccountStore(db), audit=AuditLog(db), now=lambda: NOW)
    mine = (await home.summary("T1", "U1")).mine
    assert [e.operation for e in mine] == ["op6", "op5", "op4", "op3", "op2"]


async def _summary(db: Database) -> HomeSummary:
    await AccountStore(db).add(
        NewAccount(team_id="T1", label="main", account_sid=SID, secret="token-0123456789", added_by="U0SETUP")
    )
    await _entry(db, at=NOW, outcome="error", code=21211)
    return await Home(accounts=AccountStore(db), audit=AuditLog(db), now=lambda: NOW).summary("T1", "U1")


async def test_admins_see_the_set_up_button_with_masked_sids(db: Database) -> None:
    """An admin's view: the account with its SID masked, the chart, the error, the set-up button."""
    view = cards.home_view(await _summary(db), viewer="U1", is_admin=True, listed_admins=[])
    text = json.dumps(view, ensure_ascii=False)
    assert view["type"] == "home"
    assert "AC01…cdef" in text and SID not in text
    assert "error 21211" in text and "sent" in text and "```" in text
    actions = [b for b in view["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [cards.ACTION_HOME_SETUP]


async def test_others_see_who_the_admins_are(db: Database) -> None:
    """A member's view has no buttons and names the listed admins and whoever set up the accounts."""
    view = cards.home_view(await _summary(db), viewer="U1", is_admin=False, listed_admins=["U0ADMIN"])
    assert not [b for b in view["blocks"] if b["type"] == "actions"]
    text = json.dumps(view)
    assert "<@U0ADMIN>" in text and "<@U0SETUP>" in text


async def test_the_home_tab_lists_the_workspaces_routes_only(db: Database) -> None:
    """Each number routed by this workspace shows with its channel; another workspace's route does not."""
    talks = ConversationStore(db)
    for team, number, channel in (("T1", "+15557654321", "C0SUPPORT"), ("T2", "+15557654322", "C0OTHER")):
        await talks.add_route(new_route(team_id=team, number=number, channel_id=channel, account_sid=SID))
    home = Home(accounts=AccountStore(db), audit=AuditLog(db), routes=talks, now=lambda: NOW)
    summary = await home.summary("T1", "U1")
    assert [(r.number, r.channel_id) for r in summary.routes] == [("+15557654321", "C0SUPPORT")]
    admin = json.dumps(cards.home_view(summary, viewer="U1", is_admin=True, listed_admins=[]))
    assert "+15557654321" in admin and "<#C0SUPPORT>" in admin
    assert "+15557654322" not in admin and "C0OTHER" not in admin
    assert "/twilio route " in admin
    member = json.dumps(cards.home_view(summary, viewer="U2", is_admin=False, listed_admins=[]))
    assert "<#C0SUPPORT>" in member and "/twilio route " not in member
    empty = await home.summary("T3", "U1")
    blocks = cards.home_view(empty, viewer="U1", is_admin=True, listed_admins=[])["blocks"]
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert any(t.startswith("*Routes*\nNone yet") for t in texts)

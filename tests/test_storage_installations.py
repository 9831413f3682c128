"""Slack installations and OAuth states: encrypted tokens, per-team lookups, forgetting, rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from builders import new_inbound, new_route
from cryptography.fernet import Fernet
from storage_fixtures import DB_KEY, DbTarget, open_conversation

from storage.accounts import AccountStore, NewAccount
from storage.audit import AuditLog, NewAuditEntry
from storage.conversations import ConversationStore
from storage.db import Database
from storage.installations import InstallationStore, OAuthStates, StoredInstallation
from storage.teams import TeamSettings

BOT_A = "xoxb-1111-aaaa-bot-token-of-team-one"
BOT_B = "xoxb-2222-bbbb-bot-token-of-team-two"
REFRESH_A = "xoxe-1-refresh-token-of-team-one"
TWILIO_A = "9f86d081884c7d659a2feaa0c55ad015"
TWILIO_B = "e3b0c44298fc1c149afbf4c8996fb924"
SID = "AC" + "0123456789abcdef" * 2
WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _install(team: str | None, token: str, **kwargs: object) -> StoredInstallation:
    values: dict[str, object] = {
        "team_id": team,
        "enterprise_id": None,
        "is_enterprise_install": False,
        "bot_token": token,
        "team_name": f"Team {team}",
        "bot_user_id": "UBOT",
        "bot_scopes": ("commands", "chat:write"),
        "installed_by": "U1",
        "installed_at": WHEN,
    }
    values.update(kwargs)
    return StoredInstallation(**values)  # type: ignore[arg-type]


async def _raw_rows(db: Database) -> str:
    rows = await db.fetch_all("SELECT * FROM slack_installations")
    rows += await db.fetch_all("SELECT * FROM accounts")
    return repr(rows)


async def test_an_installation_round_trips_with_its_tokens(db: Database) -> None:
    """save then find gives back every field, tokens decrypted; repr shows no token."""
    store = InstallationStore(db)
    expires = WHEN + timedelta(hours=12)
    saved = _install("T1", BOT_A, bot_refresh_token=REFRESH_A, bot_token_expires_at=expires)
    await store.save(saved)
    found = await store.find(team_id="T1", enterprise_id=None)
    assert found == saved
    assert BOT_A not in repr(found) and REFRESH_A not in repr(found)


async def test_no_token_is_stored_in_plaintext(db: Database) -> None:
    """The raw rows hold neither the bot token nor the refresh token, only Fernet tokens."""
    store = InstallationStore(db)
    await store.save(_install("T1", BOT_A, bot_refresh_token=REFRESH_A))
    raw = await _raw_rows(db)
    assert BOT_A not in raw and REFRESH_A not in raw
    row = await db.fetch_one("SELECT bot_token_enc FROM slack_installations")
    assert row is not None and db.box.decrypt(row["bot_token_enc"]) == BOT_A


async def test_teams_are_found_apart_and_reinstall_replaces(db: Database) -> None:
    """Each team finds its own installation; saving again replaces it; an unknown team finds none."""
    store = InstallationStore(db)
    await store.save(_install("T1", BOT_A))
    await store.save(_install("T2", BOT_B))
    one = await store.find(team_id="T1", enterprise_id=None)
    two = await store.find(team_id="T2", enterprise_id=None)
    assert one is not None and one.bot_token == BOT_A
    assert two is not None and two.bot_token == BOT_B
    assert await store.find(team_id="T3", enterprise_id=None) is None
    await store.save(_install("T1", BOT_A + "-new", team_name="Renamed"))
    again = await store.find(team_id="T1", enterprise_id=None)
    assert again is not None and (again.bot_token, again.team_name) == (BOT_A + "-new", "Renamed")
    assert [i.team_id for i in await store.list()] == ["T1", "T2"]


async def test_an_org_wide_install_serves_each_team_of_its_org(db: Database) -> None:
    """Enterprise Grid: a team without its own row resolves to the org's installation; others do not."""
    store = InstallationStore(db)
    await store.save(_install(None, BOT_A, enterprise_id="E1", is_enterprise_install=True))
    found = await store.find(team_id="T9", enterprise_id="E1")
    assert found is not None and found.bot_token == BOT_A and found.is_enterprise_install
    assert await store.find(team_id="T9", enterprise_id="E2") is None
    assert await store.find(team_id="T9", enterprise_id=None) is None


async def test_forget_deletes_the_teams_tokens_and_accounts_only(db: Database) -> None:
    """forget removes that team's installation, accounts and settings; the other team and the audit stay."""
    store = InstallationStore(db)
    accounts = AccountStore(db)
    audit = AuditLog(db)
    await store.save(_install("T1", BOT_A))
    await store.save(_install("T2", BOT_B))
    await accounts.add(
        NewAccount(team_id="T1", label="main", account_sid=SID, secret=TWILIO_A, added_by="U1")
    )
    await accounts.add(
        NewAccount(team_id="T2", label="main", account_sid=SID, secret=TWILIO_B, added_by="U2")
    )
    await audit.record(
        NewAuditEntry(
            team_id="T1", user_id="U1", channel_id="C1", operation="send", summary="to=+1555", outcome="ok"
        )
    )
    await TeamSettings(db).set_log_channel("T1", "C1", updated_by="U1")
    await TeamSettings(db).set_log_channel("T2", "C2", updated_by="U2")
    gone = await store.forget(team_id="T1")
    assert (gone.installations, gone.accounts) == (1, 1)
    assert await TeamSettings(db).get_log_channel("T1") is None
    assert await TeamSettings(db).get_log_channel("T2") == "C2"
    assert await store.find(team_id="T1", enterprise_id=None) is None
    assert await accounts.list("T1") == []
    assert [a.team_id for a in await accounts.list("T2")] == ["T2"]
    assert await store.find(team_id="T2", enterprise_id=None) is not None
    assert len(await audit.recent("T1", 10)) == 1
    assert (await store.forget(team_id="T1")).installations == 0


async def _talk(db: Database, team: str, account_sid: str, number: str, event_id: str) -> None:
    """A route, a conversation with a shown text and a reply, and a handled event, all of `team`."""
    talks = ConversationStore(db)
    await talks.add_route(
        new_route(team_id=team, number=number, channel_id="C" + team, account_sid=account_sid)
    )
    conversation = await open_conversation(
        talks, team_id=team, channel_id="C" + team, account_sid=account_sid, our_number=number, at=WHEN
    )
    text = await talks.record_inbound(
        new_inbound(
            message_sid="SM" + event_id.ljust(32, "0"),
            account_sid=account_sid,
            our_number=number,
            body=f"hello {team}",
            received_at=WHEN,
        )
    )
    assert text is not None
    await talks.mark_posted(
        text.message_sid, team_id=team, conversation_id=conversation.id, posted_ts="0.500"
    )
    await talks.record_reply(
        key=f"reply:{team}",
        team_id=team,
        conversation_id=conversation.id,
        channel_id="C" + team,
        message_ts="1.000",
    )
    assert await talks.first_event(event_id, team)


async def _counts(db: Database, team: str) -> dict[str, int]:
    counts = {}
    for table in ("routes", "conversations", "inbound_messages", "replies", "slack_events"):
        row = await db.fetch_one(f"SELECT COUNT(*) AS n FROM {table} WHERE team_id = ?", [team])  # noqa: S608
        counts[table] = int(row["n"]) if row is not None else -1
    return counts


async def test_forget_deletes_the_teams_routes_and_conversations_only(db: Database) -> None:
    """Uninstall forgets a workspace's routes, threads, texts, replies and events; another keeps its own."""
    await _talk(db, "T1", SID, "+15557654321", "Ev1")
    await _talk(db, "T2", SID, "+15557654322", "Ev2")
    gone = await InstallationStore(db).forget(team_id="T1")
    assert (gone.routes, gone.conversations) == (1, 1)
    everything = dict.fromkeys(("routes", "conversations", "inbound_messages", "replies", "slack_events"), 1)
    assert await _counts(db, "T1") == dict.fromkeys(everything, 0)
    assert await _counts(db, "T2") == everything
    assert await ConversationStore(db).route_for(SID, "+15557654322") is not None
    assert await ConversationStore(db).route_for(SID, "+15557654321") is None


async def test_an_org_wide_forget_deletes_the_routes_of_the_orgs_accounts(db: Database) -> None:
    """An org-wide uninstall removes the routes and threads of the org's accounts, not another team's."""
    org_sid = "AC" + "fedcba9876543210" * 2
    await InstallationStore(db).save(_install(None, BOT_A, enterprise_id="E1", is_enterprise_install=True))
    accounts = AccountStore(db)
    await accounts.add(
        NewAccount(
            team_id="T1",
            label="main",
            account_sid=org_sid,
            secret=TWILIO_A,
            added_by="U1",
            enterprise_id="E1",
        )
    )
    await accounts.add(
        NewAccount(team_id="T2", label="main", account_sid=SID, secret=TWILIO_B, added_by="U2")
    )
    await _talk(db, "T1", org_sid, "+15557654321", "Ev1")
    await _talk(db, "T2", SID, "+15557654322", "Ev2")
    gone = await InstallationStore(db).forget(team_id=None, enterprise_id="E1", is_enterprise_install=True)
    assert (gone.installations, gone.accounts, gone.routes, gone.conversations) == (1, 1, 1, 1)
    t1 = await _counts(db, "T1")
    assert (t1["routes"], t1["conversations"], t1["inbound_messages"], t1["replies"]) == (0, 0, 0, 0)
    assert (await _counts(db, "T2"))["routes"] == 1


async def test_forget_leaves_no_copy_in_the_sqlite_file_or_wal(tmp_path: Path) -> None:
    """After forget, neither the plaintext nor the encrypted tokens are anywhere in bot.db or its WAL."""
    path = tmp_path / "bot.db"
    db = await Database.connect(path, secret_keys=DB_KEY)
    try:
        store = InstallationStore(db)
        await store.save(_install("T1", BOT_A, bot_refresh_token=REFRESH_A))
        await store.save(_install("T2", BOT_B))
        await AccountStore(db).add(
            NewAccount(team_id="T1", label="main", account_sid=SID, secret=TWILIO_A, added_by="U")
        )
        rows = await db.fetch_all("SELECT bot_token_enc AS enc FROM slack_installations WHERE team_id = 'T1'")
        rows += await db.fetch_all("SELECT secret_enc AS enc FROM accounts WHERE team_id = 'T1'")
        encrypted = [str(row["enc"]) for row in rows]
        assert len(encrypted) == 2
        await store.forget(team_id="T1")
        files = [p for p in (path, path.with_name("bot.db-wal")) if p.exists()]
        data = b"".join(p.read_bytes() for p in files)
        for needle in [BOT_A, REFRESH_A, TWILIO_A, *encrypted]:
            assert needle.encode() not in data
        kept = await db.fetch_one("SELECT bot_token_enc AS enc FROM slack_installations WHERE team_id = 'T2'")
        assert kept is not None
    finally:
        await db.close()


async def test_rotate_all_re_encrypts_tokens_under_the_new_key(db_target: DbTarget) -> None:
    """After rotate_all with NEW,OLD, the tokens open with NEW alone."""
    old_key = DB_KEY
    new_key = Fernet.generate_key().decode()
    db = await db_target.open(old_key)
    try:
        await InstallationStore(db).save(_install("T1", BOT_A, bot_refresh_token=REFRESH_A))
        await InstallationStore(db).save(_install("T2", BOT_B))
    finally:
        await db.close()
    both = await db_target.open(f"{new_key},{old_key}")
    try:
        assert await InstallationStore(both).rotate_all() == 3
    finally:
        await both.close()
    new_only = await db_target.open(new_key)
    try:
        found = await InstallationStore(new_only).find(team_id="T1", enterprise_id=None)
        assert found is not None and (found.bot_token, found.bot_refresh_token) == (BOT_A, REFRESH_A)
    finally:
        await new_only.close()


async def test_a_state_is_good_once(db: Database) -> None:
    """An issued state is consumed once; the second time, and a state never issued, are refused."""
    states = OAuthStates(db)
    state = await states.issue()
    assert await states.consume(state) is True
    assert await states.consume(state) is False
    assert await states.consume("forged-state") is False
    assert await states.consume("") is False
    assert await states.consume(None) is False


async def test_a_state_older_than_ten_minutes_is_refused(db: Database) -> None:
    """A state consumed 10 minutes after it was issued is refused, and cannot be tried again."""
    states = OAuthStates(db)
    state = await states.issue(now=WHEN)
    assert await states.consume(state, now=WHEN + timedelta(minutes=10)) is False
    fresh = await states.issue(now=WHEN)
    assert await states.consume(fresh, now=WHEN + timedelta(minutes=9, seconds=59)) is True

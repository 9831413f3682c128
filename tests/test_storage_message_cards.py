"""Tracked message cards and auth tokens for webhooks, on both engines."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.accounts import AccountStore, NewAccount
from storage.db import Database
from storage.message_cards import MessageCards, NewMessageCard

SID = "SM" + "a" * 32
ACCOUNT = "AC" + "1" * 32
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# (rank, below) as bot.status gives them: storage takes numbers, not status words.
QUEUED, SENT, DELIVERED, CANCELED = (1, 1), (3, 3), (4, 4), (99, 4)


async def _open(cards: MessageCards, sid: str = SID, at: datetime = T0) -> None:
    await cards.open(
        NewMessageCard(
            message_sid=sid,
            team_id="T1",
            account_sid=ACCOUNT,
            account_label="main",
            status="queued",
            status_rank=1,
            error_code=None,
            status_at=at,
            card_json="{}",
        )
    )


async def _advance(cards: MessageCards, status: str, rule: tuple[int, int], code: int | None = None) -> bool:
    rank, below = rule
    done = await cards.advance(
        SID, account_sid=ACCOUNT, status=status, rank=rank, below=below, error_code=code, at=T0
    )
    return done is not None


async def test_status_only_moves_forward(db: Database) -> None:
    """sent, then delivered apply; a late sent or a repeated delivered change nothing."""
    cards = MessageCards(db)
    await _open(cards)
    assert await _advance(cards, "sent", SENT)
    assert await _advance(cards, "delivered", DELIVERED)
    assert not await _advance(cards, "sent", SENT)
    assert not await _advance(cards, "delivered", DELIVERED)
    assert not await _advance(cards, "undelivered", DELIVERED, 30003)
    card = await cards.get(SID)
    assert card is not None and card.status == "delivered" and card.error_code is None


async def test_canceled_ends_it_but_cannot_undo_a_final_status(db: Database) -> None:
    """canceled applies before a final status and nothing applies after it."""
    cards = MessageCards(db)
    await _open(cards)
    assert await _advance(cards, "canceled", CANCELED)
    assert not await _advance(cards, "delivered", DELIVERED)
    other = MessageCards(db)
    await _open(other, "SM" + "b" * 32)
    await other.advance(
        "SM" + "b" * 32, account_sid=ACCOUNT, status="delivered", rank=4, below=4, error_code=None, at=T0
    )
    assert (
        await other.advance(
            "SM" + "b" * 32, account_sid=ACCOUNT, status="canceled", rank=99, below=4, error_code=None, at=T0
        )
        is None
    )


async def test_an_unknown_message_is_not_advanced(db: Database) -> None:
    """A report for a message nobody tracks finds nothing."""
    assert not await _advance(MessageCards(db), "delivered", DELIVERED)


async def test_another_account_cannot_move_a_message(db: Database) -> None:
    """A report signed for another account names a message that is not its own: nothing changes."""
    cards = MessageCards(db)
    await _open(cards)
    other = "AC" + "2" * 32
    assert (
        await cards.advance(SID, account_sid=other, status="failed", rank=4, below=4, error_code=1, at=T0)
        is None
    )
    card = await cards.get(SID)
    assert card is not None and card.status == "queued"


async def test_a_forgotten_message_is_no_longer_tracked(db: Database) -> None:
    """forget removes the row; later reports find nothing."""
    cards = MessageCards(db)
    await _open(cards)
    await cards.forget(SID)
    assert await cards.get(SID) is None
    assert not await _advance(cards, "delivered", DELIVERED)


async def test_racing_reports_apply_once(db: Database) -> None:
    """Ten copies of one report at once: exactly one applies."""
    cards = MessageCards(db)
    await _open(cards)
    results = await asyncio.gather(*(_advance(cards, "delivered", DELIVERED) for _ in range(10)))
    assert results.count(True) == 1


async def test_posted_records_where_the_card_went(db: Database) -> None:
    """A ts means editable; no ts means a response_url card; open_since lists what is open or lagging."""
    cards = MessageCards(db)
    await _open(cards)
    await _open(cards, "SM" + "c" * 32, T0 - timedelta(days=2))
    card = await cards.posted(
        SID, channel_id="C1", card_ts="1.0001", log_channel_id="C2", log_ts="2.0002", shown_status="queued"
    )
    assert card is not None and not card.via_response_url and card.log_ts == "2.0002"
    other = await cards.posted(
        "SM" + "c" * 32,
        channel_id="C1",
        card_ts=None,
        log_channel_id=None,
        log_ts=None,
        shown_status="queued",
    )
    assert other is not None and other.via_response_url
    assert [c.message_sid for c in await cards.open_since(T0 - timedelta(hours=24), below_rank=4)] == [SID]
    await _advance(cards, "delivered", DELIVERED)
    assert [c.message_sid for c in await cards.open_since(T0 - timedelta(hours=24), below_rank=4)] == [SID]
    await cards.shown(SID, "delivered")
    assert await cards.open_since(T0 - timedelta(hours=24), below_rank=4) == []


async def test_webhook_tokens_come_from_every_workspace_with_the_account(db: Database) -> None:
    """Auth-token accounts give their token; API-key ones only a stored webhook token; unknown: not stored."""
    accounts = AccountStore(db)
    # The same API key stored by two workspaces; only the second gave a webhook token.
    api_key: dict[str, Any] = {
        "label": "k",
        "account_sid": ACCOUNT,
        "secret": "key-secret",
        "api_key_sid": "SK" + "0" * 32,
        "added_by": "U",
    }
    assert not (await accounts.webhook_tokens(ACCOUNT)).stored
    await accounts.add(NewAccount(team_id="T1", **api_key))
    keyed = await accounts.webhook_tokens(ACCOUNT)
    assert keyed.stored and keyed.tokens == ()
    await accounts.add(
        NewAccount(team_id="T2", label="main", account_sid=ACCOUNT, secret="token-one", added_by="U")
    )
    await accounts.add(NewAccount(team_id="T3", webhook_token="token-two", **api_key))
    found = await accounts.webhook_tokens(ACCOUNT)
    assert sorted(found.tokens) == ["token-one", "token-two"]
    assert "token" not in repr(found).replace("WebhookTokens", "")
    row = await db.fetch_one("SELECT webhook_token_enc FROM accounts WHERE team_id = 'T3'")
    assert row is not None and "token-two" not in str(row["webhook_token_enc"])

"""Each workspace's Twilio accounts, with the secret encrypted at rest.

Every query is filtered by `team_id`: one workspace can never see, use or remove another's account.
Each workspace with accounts has exactly one default (a partial unique index guards it too).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from storage.db import Database, Queries, Row, Transaction, utc_now
from storage.rows import from_row, params

__all__ = ["AccountSecret", "AccountStore", "NewAccount", "StoredAccount", "WebhookTokens", "mask_sid"]

# Static SQL only: no statement is assembled from strings at run time.
_SELECT = (
    "SELECT id, team_id, enterprise_id, label, account_sid, api_key_sid, default_from, "
    "default_service_sid, is_default, added_by, added_at, secret_enc FROM accounts "
)
_SELECT_DEFAULT = _SELECT + "WHERE team_id = ? ORDER BY is_default DESC, added_at, id LIMIT 1"
_SELECT_LABEL = _SELECT + "WHERE team_id = ? AND label = ?"
_SELECT_TEAM = _SELECT + "WHERE team_id = ?"
_INSERT = (
    "INSERT INTO accounts (team_id, enterprise_id, label, account_sid, api_key_sid, secret_enc, "
    "webhook_token_enc, default_from, default_service_sid, is_default, added_by, added_at, updated_at) "
    "VALUES (:team_id, :enterprise_id, :label, :account_sid, :api_key_sid, :secret_enc, "
    ":webhook_token_enc, :default_from, :default_service_sid, 0, :added_by, :updated_at, :updated_at) "
    "RETURNING id"
)
_UPDATE = (
    "UPDATE accounts SET enterprise_id = :enterprise_id, account_sid = :account_sid, "
    "api_key_sid = :api_key_sid, secret_enc = :secret_enc, webhook_token_enc = :webhook_token_enc, "
    "default_from = :default_from, "
    "default_service_sid = :default_service_sid, added_by = :added_by, updated_at = :updated_at "
    "WHERE team_id = :team_id AND label = :label"
)


def mask_sid(sid: str | None) -> str:
    """Show enough of a SID to recognise it: `AC0123…cdef`. Short or empty values are hidden more."""
    if not sid:
        return ""
    if len(sid) <= 12:
        return sid[:2] + "…"
    return f"{sid[:4]}…{sid[-4:]}"


@dataclass(frozen=True)
class StoredAccount:
    """A workspace's Twilio account as stored, without its secret."""

    id: int
    team_id: str
    enterprise_id: str | None
    label: str
    account_sid: str
    api_key_sid: str | None
    default_from: str | None
    default_service_sid: str | None
    is_default: bool
    added_by: str
    added_at: datetime


@dataclass(frozen=True)
class NewAccount:
    """An account to store: what `AccountStore.add` takes. `repr()` never shows the secret or the token.

    `secret` is the auth token, or the API key's secret when `api_key_sid` is set; `webhook_token` is the
    account's auth token for webhooks when the secret is an API key's.
    """

    team_id: str
    label: str
    account_sid: str
    secret: str = field(repr=False)
    added_by: str
    api_key_sid: str | None = None
    default_from: str | None = None
    default_service_sid: str | None = None
    enterprise_id: str | None = None
    webhook_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AccountSecret:
    """An account's decrypted secret: the auth token, or the API key's secret when `api_key_sid` is set.

    Plain values, so storage needs nothing of the Twilio client; `repr()` never shows the secret.
    """

    account_sid: str
    secret: str = field(repr=False)
    api_key_sid: str | None = None


@dataclass(frozen=True)
class WebhookTokens:
    """The auth tokens that may have signed a webhook for one Account SID, from every workspace storing it.

    `stored` is False when no workspace has that account; `tokens` is empty when every one of them was
    set up with an API key and no auth token for webhooks. `repr()` never shows a token.
    """

    stored: bool
    tokens: tuple[str, ...] = field(default=(), repr=False)


async def _row(db: Queries, team_id: str, label: str | None) -> Row | None:
    """The row for `label` in `team_id`, or the team's default when `label` is None."""
    if label is None:
        return await db.fetch_one(_SELECT_DEFAULT, [team_id])
    return await db.fetch_one(_SELECT_LABEL, [team_id, label])


class AccountStore:
    """Add, list, use and remove a workspace's Twilio accounts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, account: NewAccount, *, make_default: bool | None = None) -> StoredAccount:
        """Store an account, replacing the team's account with the same label.

        The label is stored as given (the bot checks and normalises it). The first account of a
        team becomes its default; `make_default=True` moves the default flag to this account in the
        same transaction. Otherwise the default stays where it is. The webhook token is stored
        encrypted (only beside an API key), and replacing the account without one forgets it.
        Raises ValueError for an empty team, label or secret.
        """
        team_id, label, webhook_token = account.team_id, account.label, account.webhook_token
        if not team_id:
            raise ValueError("A team ID is required to store an account.")
        if not label:
            raise ValueError("An account label is required to store an account.")
        if not account.secret.strip():
            raise ValueError("The Twilio auth token or API secret is empty.")
        values = params(
            account,
            leave_out={"secret", "webhook_token"},
            secret_enc=self._db.box.encrypt(account.secret.strip()),
            webhook_token_enc=(
                self._db.box.encrypt(webhook_token.strip())
                if account.api_key_sid and webhook_token and webhook_token.strip()
                else None
            ),
            updated_at=utc_now(),
        )
        async with self._db.transaction() as tx:
            await tx.lock(f"accounts:{team_id}")
            existing = await _row(tx, team_id, label)
            if existing is not None:
                account_id = int(existing["id"])
                await tx.execute(_UPDATE, values)
            else:
                inserted = await tx.fetch_one(_INSERT, values)
                assert inserted is not None
                account_id = int(inserted["id"])
            has_default = await tx.fetch_one(
                "SELECT 1 AS found FROM accounts WHERE team_id = ? AND is_default = 1", [team_id]
            )
            if make_default or has_default is None:
                await _move_default(tx, team_id, account_id)
            stored = await _row(tx, team_id, label)
        assert stored is not None
        return from_row(StoredAccount, stored)

    async def list(self, team_id: str) -> list[StoredAccount]:
        """The team's accounts: the default first, then by label."""
        rows = await self._db.fetch_all(_SELECT_TEAM, [team_id])
        # Sorted here, not in SQL: PostgreSQL's collation could order labels unlike SQLite's bytes.
        return sorted(
            (from_row(StoredAccount, row) for row in rows), key=lambda a: (not a.is_default, a.label.encode())
        )

    async def get(self, team_id: str, label: str | None = None) -> StoredAccount | None:
        """The team's account called `label`, or its default when `label` is None; None if absent."""
        if label == "":
            return None
        row = await _row(self._db, team_id, label)
        return None if row is None else from_row(StoredAccount, row)

    async def credentials(
        self, team_id: str, label: str | None = None
    ) -> tuple[StoredAccount, AccountSecret] | None:
        """The account (as `get`) with its decrypted credentials; None if absent.

        Raises `storage.crypto.WrongKeyError` when the configured keys cannot decrypt the secret.
        """
        if label == "":
            return None
        row = await _row(self._db, team_id, label)
        if row is None:
            return None
        account = from_row(StoredAccount, row)
        creds = AccountSecret(
            account_sid=account.account_sid,
            secret=self._db.box.decrypt(str(row["secret_enc"])),
            api_key_sid=account.api_key_sid,
        )
        return account, creds

    async def webhook_tokens(self, account_sid: str) -> WebhookTokens:
        """Every auth token stored for `account_sid` in any workspace: what a Twilio webhook is signed with.

        An account set up with its auth token gives that; one set up with an API key gives its webhook
        token if one was stored. Raises `storage.crypto.WrongKeyError` when a token cannot be decrypted.
        """
        rows = await self._db.fetch_all(
            "SELECT api_key_sid, secret_enc, webhook_token_enc FROM accounts WHERE account_sid = ?",
            [account_sid],
        )
        tokens: list[str] = []
        for row in rows:
            sealed = row["secret_enc"] if row["api_key_sid"] is None else row["webhook_token_enc"]
            if sealed is not None:
                token = self._db.box.decrypt(str(sealed))
                if token not in tokens:
                    tokens.append(token)
        return WebhookTokens(stored=bool(rows), tokens=tuple(tokens))

    @contextlib.asynccontextmanager
    async def _locked(self, team_id: str, label: str) -> AsyncIterator[tuple[Transaction, Row | None]]:
        """A transaction holding the team's accounts lock, and the account `label` in it (None: none)."""
        async with self._db.transaction() as tx:
            await tx.lock(f"accounts:{team_id}")
            yield tx, await _row(tx, team_id, label)

    async def remove(self, team_id: str, label: str) -> bool:
        """Remove the team's account called `label`; True if it existed.

        When the default is removed, the oldest remaining account becomes the default.
        """
        if not label:
            return False
        async with self._locked(team_id, label) as (tx, row):
            if row is None:
                return False
            await tx.execute("DELETE FROM accounts WHERE id = ? AND team_id = ?", [row["id"], team_id])
            if row["is_default"]:
                oldest = await tx.fetch_one(
                    "SELECT id FROM accounts WHERE team_id = ? ORDER BY added_at, id LIMIT 1", [team_id]
                )
                if oldest is not None:
                    await _move_default(tx, team_id, int(oldest["id"]))
        return True

    async def set_default(self, team_id: str, label: str) -> bool:
        """Make the team's account called `label` its default; False if there is no such account."""
        if not label:
            return False
        async with self._locked(team_id, label) as (tx, row):
            if row is None:
                return False
            await _move_default(tx, team_id, int(row["id"]))
        return True

    async def rotate_all(self) -> int:
        """Re-encrypt every stored secret (all teams) under the newest key, in one transaction.

        Returns how many secrets were re-encrypted. Raises `WrongKeyError` (and changes nothing)
        if any secret cannot be decrypted with the configured keys.
        """
        box = self._db.box
        rotated = 0
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all("SELECT id, secret_enc, webhook_token_enc FROM accounts ORDER BY id")
            for row in rows:
                # Only if unchanged since read: a secret replaced meanwhile is already under the newest key.
                rotated += await tx.execute(
                    "UPDATE accounts SET secret_enc = ? WHERE id = ? AND secret_enc = ?",
                    [box.rotate(str(row["secret_enc"])), row["id"], row["secret_enc"]],
                )
                if row["webhook_token_enc"] is not None:
                    rotated += await tx.execute(
                        "UPDATE accounts SET webhook_token_enc = ? WHERE id = ? AND webhook_token_enc = ?",
                        [box.rotate(str(row["webhook_token_enc"])), row["id"], row["webhook_token_enc"]],
                    )
        return rotated


async def _move_default(tx: Queries, team_id: str, account_id: int) -> None:
    # Clear first, then set: a single UPDATE could briefly hold two defaults and trip the index.
    await tx.execute("UPDATE accounts SET is_default = 0 WHERE team_id = ? AND is_default = 1", [team_id])
    await tx.execute("UPDATE accounts SET is_default = 1 WHERE team_id = ? AND id = ?", [team_id, account_id])

"""Numbered schema migrations. Append new ones at the end; never edit one that has shipped."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

__all__ = ["migrations"]

migrations = Migrations("slack-twilio-bridge")


@migrations(name="0001_accounts")
def m0001_accounts(db: sqlite_utils.Database) -> None:
    """Twilio accounts per workspace; the secret is stored only as a Fernet token."""
    db.execute(
        """
        CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            team_id TEXT NOT NULL,
            enterprise_id TEXT,
            label TEXT NOT NULL,
            account_sid TEXT NOT NULL,
            api_key_sid TEXT,
            secret_enc TEXT NOT NULL,
            default_from TEXT,
            default_service_sid TEXT,
            is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
            added_by TEXT NOT NULL,
            added_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (team_id, label)
        )
        """
    )
    # At most one default per workspace, whatever the code above it does.
    db.execute("CREATE UNIQUE INDEX accounts_one_default ON accounts (team_id) WHERE is_default = 1")


@migrations(name="0002_audit")
def m0002_audit(db: sqlite_utils.Database) -> None:
    """Who ran which Twilio operation, with a short request summary and the outcome (never secrets)."""
    db.execute(
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            team_id TEXT NOT NULL,
            enterprise_id TEXT,
            user_id TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            operation TEXT NOT NULL,
            account_label TEXT,
            account_sid TEXT,
            summary TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'unknown', 'rejected')),
            message_sid TEXT,
            error_code INTEGER,
            error_message TEXT
        )
        """
    )
    db.execute("CREATE INDEX audit_team_recent ON audit (team_id, id DESC)")


@migrations(name="0003_outbox")
def m0003_outbox(db: sqlite_utils.Database) -> None:
    """One row per send/schedule, keyed by an idempotency key, so a retry never sends twice."""
    db.execute(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            team_id TEXT NOT NULL,
            enterprise_id TEXT,
            user_id TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            response_url TEXT,
            account_label TEXT,
            account_sid TEXT,
            operation TEXT NOT NULL CHECK (operation IN ('send', 'schedule')),
            request_json TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sent', 'failed', 'unknown')),
            message_sid TEXT,
            error_code INTEGER,
            error_message TEXT,
            created_at TEXT NOT NULL,
            settled_at TEXT,
            card_posted INTEGER NOT NULL DEFAULT 0 CHECK (card_posted IN (0, 1)),
            attempts INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX outbox_pending ON outbox (state, id)")


@migrations(name="0004_teams")
def m0004_teams(db: sqlite_utils.Database) -> None:
    """Per-workspace settings."""
    db.execute(
        """
        CREATE TABLE teams (
            team_id TEXT PRIMARY KEY,
            log_channel_id TEXT,
            default_region TEXT,
            updated_by TEXT,
            updated_at TEXT NOT NULL
        )
        """
    )

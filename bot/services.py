"""The services every door uses, built once per process by the composition root (`bot.server`, `bot.cli`).

A door (the Slack listeners, the CLI, later Twilio's webhooks) gets these and its own parts, never the
stores or the Twilio client they are built from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.conversations import Conversations
from bot.inflight import InFlight
from bot.media_links import MediaLinks
from bot.operations import Operations
from bot.settings import Settings
from bot.tasks import TaskTracker
from bot.twilio.client import TwilioClient
from bot.twilio.media import MediaFetcher
from bot.workspace import Workspace
from storage.accounts import AccountStore
from storage.audit import AuditLog
from storage.conversations import ConversationStore
from storage.db import Database
from storage.outbox import Outbox
from storage.teams import TeamSettings

__all__ = ["Services", "Stores", "build_services"]


@dataclass(frozen=True)
class Stores:
    """The repositories over one database; only the composition root (and tests) hold them."""

    accounts: AccountStore
    audit: AuditLog
    outbox: Outbox
    teams: TeamSettings
    conversations: ConversationStore

    @classmethod
    def over(cls, db: Database) -> Stores:
        """Every repository over `db`."""
        return cls(AccountStore(db), AuditLog(db), Outbox(db), TeamSettings(db), ConversationStore(db))


@dataclass(frozen=True)
class Services:
    """Front-end-neutral services: what a door may call."""

    operations: Operations
    workspace: Workspace
    tasks: TaskTracker
    clock: Callable[[], datetime]
    conversations: Conversations


def build_services(
    settings: Settings,
    stores: Stores,
    twilio: TwilioClient,
    *,
    clock: Callable[[], datetime],
    tasks: TaskTracker | None = None,
    inflight: InFlight | None = None,
    media: MediaFetcher | None = None,
    links: MediaLinks | None = None,
) -> Services:
    """The services over `stores`, calling Twilio through `twilio`."""
    operations = Operations(
        twilio=twilio,
        accounts=stores.accounts,
        audit=stores.audit,
        outbox=stores.outbox,
        concurrency=settings.twilio_concurrency,
        inflight=inflight,
        clock=clock,
    )
    workspace = Workspace(twilio=twilio, accounts=stores.accounts, audit=stores.audit, teams=stores.teams)
    tracker = tasks or TaskTracker()
    conversations = Conversations(
        store=stores.conversations,
        accounts=stores.accounts,
        twilio=twilio,
        operations=operations,
        tasks=tracker,
        clock=clock,
        idle_days=settings.conversation_idle_days,
        public_url=settings.public_url,
        media=media,
        links=links,
    )
    return Services(operations, workspace, tracker, clock, conversations)

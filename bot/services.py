"""The services every door uses, built once per process by the composition root (`bot.server`, `bot.cli`).

A door (the Slack listeners, the CLI, later Twilio's webhooks) gets these and its own parts, never the
stores or the Twilio client they are built from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.conversations import Conversations
from bot.home import Home
from bot.inflight import InFlight
from bot.installs import Installs
from bot.intake import Intake
from bot.leases import Leases
from bot.media_links import MediaLinks
from bot.operations import Operations
from bot.settings import Settings
from bot.status import LiveStatus
from bot.tasks import TaskTracker
from bot.twilio.client import TwilioClient
from bot.twilio.media import MediaFetcher
from bot.workspace import Workspace
from storage.accounts import AccountStore
from storage.audit import AuditLog
from storage.conversations import ConversationStore
from storage.db import Database
from storage.installations import InstallationStore, OAuthStates
from storage.journal import Journal
from storage.message_cards import MessageCards
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
    message_cards: MessageCards
    journal: Journal
    conversations: ConversationStore
    installations: InstallationStore
    states: OAuthStates

    @classmethod
    def over(cls, db: Database) -> Stores:
        """Every repository over `db`."""
        return cls(
            AccountStore(db),
            AuditLog(db),
            Outbox(db),
            TeamSettings(db),
            MessageCards(db),
            Journal(db),
            ConversationStore(db),
            InstallationStore(db),
            OAuthStates(db),
        )


@dataclass(frozen=True)
class Services:
    """Front-end-neutral services: what a door may call."""

    operations: Operations
    workspace: Workspace
    tasks: TaskTracker
    clock: Callable[[], datetime]
    status: LiveStatus
    intake: Intake
    conversations: Conversations
    installs: Installs
    home: Home


def build_services(
    settings: Settings,
    stores: Stores,
    twilio: TwilioClient,
    *,
    clock: Callable[[], datetime],
    tasks: TaskTracker | None = None,
    inflight: InFlight | None = None,
    leases: Leases | None = None,
    media: MediaFetcher | None = None,
    links: MediaLinks | None = None,
) -> Services:
    """The services over `stores`, calling Twilio through `twilio`; `leases` on a shared PostgreSQL."""
    tasks = tasks or TaskTracker()
    inflight = inflight or InFlight(None)
    status = LiveStatus(
        cards=stores.message_cards,
        tasks=tasks,
        clock=clock,
        enabled=settings.public_url is not None,
        interval=settings.status_update_interval,
    )
    operations = Operations(
        twilio=twilio,
        accounts=stores.accounts,
        audit=stores.audit,
        outbox=stores.outbox,
        concurrency=settings.twilio_concurrency,
        inflight=inflight,
        leases=leases,
        clock=clock,
        status_callback=f"{settings.public_url}/twilio/status" if settings.public_url else None,
        live=status,
    )
    workspace = Workspace(
        twilio=twilio,
        account_store=stores.accounts,
        audit=stores.audit,
        teams=stores.teams,
        installations=stores.installations,
    )
    # The same leases as the operations': a key accepted here is the key the create then claims.
    intake = Intake(
        journal=stores.journal,
        outbox=stores.outbox,
        inflight=operations.inflight,
        clock=clock,
        max_age=timedelta(seconds=settings.recovery_max_age),
        hand_off=settings.worker_process,
    )
    conversations = Conversations(
        store=stores.conversations,
        accounts=stores.accounts,
        twilio=twilio,
        operations=operations,
        tasks=tasks,
        clock=clock,
        idle_days=settings.conversation_idle_days,
        public_url=settings.public_url,
        media=media,
        links=links,
    )
    installs = Installs(stores.installations, stores.states, stores.audit)
    home = Home(accounts=stores.accounts, audit=stores.audit, routes=stores.conversations)
    return Services(operations, workspace, tasks, clock, status, intake, conversations, installs, home)

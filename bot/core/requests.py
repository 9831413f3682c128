"""The typed requests the `/twilio` grammar (`bot.core.commands`) and the forms produce.

Each request class knows its subcommand's name (`SendCommand.subcommand == "send"`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar

from bot.core.phone import PhoneNumber
from bot.core.rules import DEFAULT_PAGE_SIZE

DEFAULT_HISTORY = 10
MAX_HISTORY = 50


# --- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HelpCommand:
    """Show help; `topic` is the subcommand asked about, or the unknown word that was typed."""

    subcommand: ClassVar[str] = "help"

    topic: str | None = None


@dataclass(frozen=True)
class SetupCommand:
    """Open the modal that adds or replaces a Twilio account."""

    subcommand: ClassVar[str] = "setup"


@dataclass(frozen=True)
class AccountsCommand:
    """List the workspace's Twilio accounts."""

    subcommand: ClassVar[str] = "accounts"


@dataclass(frozen=True)
class SendCommand:
    """Send `body` to `to` now, from `from_` (or the account's default sender)."""

    subcommand: ClassVar[str] = "send"

    to: PhoneNumber
    body: str
    from_: PhoneNumber | None = None
    account: str | None = None
    media: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScheduleCommand:
    """Schedule `body` to `to` at `send_at` (aware UTC, whole seconds) through Messaging Service `service`."""

    subcommand: ClassVar[str] = "schedule"

    to: PhoneNumber
    send_at: datetime
    body: str
    service: str | None = None
    account: str | None = None
    media: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListCommand:
    """List messages, optionally filtered; `scheduled_only` lists those not yet sent."""

    subcommand: ClassVar[str] = "list"

    to: PhoneNumber | None = None
    from_: PhoneNumber | None = None
    date_sent: date | None = None
    limit: int = DEFAULT_PAGE_SIZE
    account: str | None = None
    scheduled_only: bool = False


@dataclass(frozen=True)
class _BySid:
    """A request about one message: its SID, and the account label it belongs to (None: the default)."""

    sid: str
    account: str | None = None


@dataclass(frozen=True)
class FetchCommand(_BySid):
    """Fetch one message by SID."""

    subcommand: ClassVar[str] = "fetch"


@dataclass(frozen=True)
class CancelCommand(_BySid):
    """Cancel a scheduled message by SID."""

    subcommand: ClassVar[str] = "cancel"


@dataclass(frozen=True)
class DeleteCommand(_BySid):
    """Delete a message record by SID."""

    subcommand: ClassVar[str] = "delete"


@dataclass(frozen=True)
class HistoryCommand:
    """Show the last `limit` audit entries."""

    subcommand: ClassVar[str] = "history"

    limit: int = DEFAULT_HISTORY


@dataclass(frozen=True)
class LogChannelCommand:
    """Set the channel that gets a copy of every result (`None` turns it off)."""

    subcommand: ClassVar[str] = "log-channel"

    channel_id: str | None


@dataclass(frozen=True)
class RouteCommand:
    """Texts to our `number` (of account `account`, or the default) open threads in `channel_id`."""

    subcommand: ClassVar[str] = "route"

    number: PhoneNumber
    channel_id: str
    account: str | None = None


@dataclass(frozen=True)
class RoutesCommand:
    """List the workspace's routes."""

    subcommand: ClassVar[str] = "routes"


@dataclass(frozen=True)
class UnrouteCommand:
    """Remove the route of our `number`."""

    subcommand: ClassVar[str] = "unroute"

    number: PhoneNumber


@dataclass(frozen=True)
class Incomplete:
    """Required arguments are missing: open `subcommand`'s modal prefilled with the raw text given.

    `prefill` keys: to, from, body, send_at, service, account, sid, date, limit. `problem` is the
    sentence about the first given value that is already invalid, to show in the modal, or None.
    """

    subcommand: str
    prefill: Mapping[str, str] = field(default_factory=dict)
    problem: str | None = None


Command = (
    HelpCommand
    | SetupCommand
    | AccountsCommand
    | SendCommand
    | ScheduleCommand
    | ListCommand
    | FetchCommand
    | CancelCommand
    | DeleteCommand
    | HistoryCommand
    | LogChannelCommand
    | RouteCommand
    | RoutesCommand
    | UnrouteCommand
    | Incomplete
)
# The commands that call Twilio: each runs as an operation after Slack's ack.
TwilioCommand = SendCommand | ScheduleCommand | ListCommand | FetchCommand | CancelCommand | DeleteCommand

"""A workspace's own set-up: its Twilio accounts, its log channel, and the history of what was done in it.

Adding an account is one operation whichever door it comes through (the setup form, `accounts add`):
check the credentials with Twilio, refuse an account Twilio says is suspended or closed, store, audit.
Nothing here knows Slack.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bot.core.errors import InputError
from bot.core.rules import check_account_label
from bot.operations import Context, OperationError
from bot.twilio.client import TwilioClient
from bot.twilio.errors import TwilioError
from bot.twilio.models import AccountInfo, Credentials
from storage.accounts import AccountStore, NewAccount, StoredAccount, WebhookTokens, mask_sid
from storage.audit import AuditEntry, AuditLog, NewAuditEntry
from storage.installations import InstallationStore
from storage.teams import TeamSettings

__all__ = [
    "AccountAdded",
    "AccountSetup",
    "AuditEntry",
    "SetupRefused",
    "StoredAccount",
    "WebhookTokens",
    "Workspace",
    "mask_sid",
]


@dataclass(frozen=True)
class AccountSetup:
    """An account to add, or to replace the one with the same label.

    `secret` is the Auth Token, or the API key's secret when `api_key_sid` is given; `repr()` never shows it.
    """

    label: str
    account_sid: str
    secret: str = field(repr=False)
    api_key_sid: str | None = None
    default_from: str | None = None
    default_service_sid: str | None = None
    make_default: bool = False
    # With an API key: the account's auth token, kept only to check Twilio's webhook signatures.
    webhook_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AccountAdded:
    """An account stored, with what Twilio said about it (None when it was stored unchecked)."""

    account: StoredAccount
    checked: AccountInfo | None


class SetupRefused(OperationError):
    """Nothing was stored: the sentence says why.

    `field` is the input at fault ("label", "account_sid" or "secret"); `unreachable` is set when Twilio
    could not be asked at all, so the door may offer another way (submit again, or `--no-verify`).
    """

    def __init__(self, message: str, *, field: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.unreachable = unreachable


# How long the auth tokens for one Account SID are kept in memory for checking webhooks: a burst of
# status callbacks then costs one database read (and decryption) per account, not one per callback.
WEBHOOK_TOKENS_TTL = 10.0


@dataclass(frozen=True, kw_only=True, eq=False)  # eq=False: one service, told apart by identity
class Workspace:
    """Account management, the log channel and the history of one workspace, for every door."""

    twilio: TwilioClient
    account_store: AccountStore
    audit: AuditLog
    teams: TeamSettings
    installations: InstallationStore | None = None
    # Account SID → (when read, its webhook tokens): see WEBHOOK_TOKENS_TTL.
    _webhook_tokens: dict[str, tuple[float, WebhookTokens]] = field(default_factory=dict, init=False)

    async def set_up_account(
        self, ctx: Context, setup: AccountSetup, *, verify: bool = True, within: float | None = None
    ) -> AccountAdded:
        """Check the credentials with Twilio (within `within` seconds), store the account and audit it.

        Raises SetupRefused, storing nothing, when the label breaks the rule, when Twilio rejects the
        credentials or cannot be asked, and when it says the account is not active (suspended, closed).
        `verify=False` stores without asking Twilio (the CLI's `--no-verify`).
        """
        try:
            label = check_account_label(setup.label, field="label")
        except InputError as err:
            raise SetupRefused(err.message, field="label") from None
        info = await self._verify(setup, within) if verify else None
        webhook_token = setup.webhook_token if setup.api_key_sid else None
        if webhook_token and verify:
            await self._verify(
                AccountSetup(setup.label, setup.account_sid, webhook_token), within, for_webhooks=True
            )
        self._webhook_tokens.clear()
        account = await self.account_store.add(
            NewAccount(
                team_id=ctx.team_id,
                enterprise_id=ctx.enterprise_id,
                label=label,
                account_sid=setup.account_sid,
                secret=setup.secret,
                api_key_sid=setup.api_key_sid,
                default_from=setup.default_from,
                default_service_sid=setup.default_service_sid,
                added_by=ctx.user_id,
                webhook_token=webhook_token,
            ),
            make_default=setup.make_default or None,
        )
        self._webhook_tokens.clear()  # again: a webhook may have read the old ones meanwhile
        checked = (
            f"twilio_name={info.friendly_name[:60]!r}" if info is not None else "not checked with Twilio"
        )
        await self.audit.record(
            NewAuditEntry(
                **ctx.who(),
                channel_id=ctx.channel_id or "",
                operation="setup",
                account_label=account.label,
                account_sid=account.account_sid,
                summary=f"label={account.label} {checked}",
                outcome="ok",
            )
        )
        return AccountAdded(account, info)

    async def _verify(
        self, setup: AccountSetup, within: float | None, *, for_webhooks: bool = False
    ) -> AccountInfo:
        creds = Credentials(account_sid=setup.account_sid, secret=setup.secret, api_key_sid=setup.api_key_sid)
        check = self.twilio.verify_account(creds)
        try:
            info = await (asyncio.wait_for(check, within) if within is not None else check)
        except TwilioError as err:
            if (err.status == 401 or err.code == 20003) and for_webhooks:
                raise SetupRefused(
                    f"Twilio rejected the auth token for webhooks (error {err.code or 20003}), so nothing "
                    "was stored; copy the account's Auth Token again from the Twilio console.",
                    field="webhook_token",
                ) from None
            if err.status == 401 or err.code == 20003:
                what = "API key SID and secret" if setup.api_key_sid else "Account SID and auth token"
                raise SetupRefused(
                    f"Twilio rejected these credentials (error {err.code or 20003}), so nothing was stored; "
                    f"copy the {what} again from the Twilio console.",
                    field="secret",
                ) from None
            if err.status is None:
                raise SetupRefused(
                    f"Could not check the credentials with Twilio, so nothing was stored: {err}",
                    field="account_sid",
                    unreachable=True,
                ) from None
            raise SetupRefused(
                f"Twilio did not accept these credentials, so nothing was stored: {err}", field="account_sid"
            ) from None
        except TimeoutError:
            raise SetupRefused(
                "Twilio did not answer in time to check these credentials, so nothing was stored; try again.",
                field="account_sid",
                unreachable=True,
            ) from None
        if info.status and info.status != "active":
            raise SetupRefused(
                f"Twilio says the account {mask_sid(setup.account_sid)} is {info.status}, so nothing was "
                "stored; reactivate it in the Twilio console first.",
                field="account_sid",
            )
        return info

    async def webhook_tokens(self, account_sid: str) -> WebhookTokens:
        """The auth tokens a Twilio webhook naming `account_sid` may be signed with (any workspace).

        Kept for WEBHOOK_TOKENS_TTL seconds; forgotten at once when this process changes an account.
        """
        now = time.monotonic()
        cached = self._webhook_tokens.get(account_sid)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self.account_store.webhook_tokens(account_sid)
        if len(self._webhook_tokens) > 1000:
            for stale in [sid for sid, (until, _) in self._webhook_tokens.items() if until <= now]:
                del self._webhook_tokens[stale]
        self._webhook_tokens[account_sid] = (now + WEBHOOK_TOKENS_TTL, found)
        return found

    async def accounts(self, team_id: str) -> list[StoredAccount]:
        """The workspace's accounts, the default first; never a secret."""
        return await self.account_store.list(team_id)

    async def default_account(self, team_id: str) -> StoredAccount | None:
        """The workspace's default account, or None when it has none."""
        return await self.account_store.get(team_id)

    async def remove_account(self, team_id: str, label: str) -> bool:
        """Remove the account called `label`; False when there is none (another one becomes the default)."""
        removed = await self.account_store.remove(team_id, label)
        self._webhook_tokens.clear()
        return removed

    async def make_default(self, team_id: str, label: str) -> bool:
        """Make the account called `label` the default; False when there is none."""
        return await self.account_store.set_default(team_id, label)

    async def rotate_keys(self) -> int:
        """Re-encrypt every stored Twilio secret (all workspaces) with the newest key; returns how many."""
        return await self.account_store.rotate_all()

    async def rotate_slack_tokens(self) -> int:
        """Re-encrypt every stored Slack bot and refresh token with the newest key; returns how many."""
        return 0 if self.installations is None else await self.installations.rotate_all()

    async def history(self, team_id: str, limit: int) -> list[AuditEntry]:
        """The workspace's last `limit` operations, newest first."""
        return await self.audit.recent(team_id, limit)

    async def log_channel(self, team_id: str) -> str | None:
        """The channel that gets a copy of every result, or None."""
        return await self.teams.get_log_channel(team_id)

    async def set_log_channel(self, ctx: Context, channel_id: str | None) -> None:
        """Copy every result to `channel_id` from now on (None: stop)."""
        await self.teams.set_log_channel(ctx.team_id, channel_id, updated_by=ctx.user_id)

"""The sandbox's Twilio account stored in a bot's database before the bot starts.

Shared by the bot-process tests (`botproc`) and the benchmarks, which import it as `tests.sandbox_accounts`:
so it imports nothing from the tests folder.
"""

from __future__ import annotations

from pathlib import Path

from bot.sandbox.slack import ADMIN_ID, TEAM_ID
from bot.sandbox.twilio import DEFAULT_FROM, DEFAULT_SERVICE_SID, SANDBOX_ACCOUNT_SID
from storage.accounts import AccountStore, NewAccount
from storage.conversations import ConversationStore, NewRoute
from storage.db import Database
from storage.installations import InstallationStore, StoredInstallation


async def store_sandbox_account(
    target: Path | str,
    *,
    secret_key: str,
    token: str,
    label: str = "main",
    route_to: str | None = None,
    bot_token: str | None = None,
) -> None:
    """Store the sandbox account as `label` of the sandbox team, as the admin's `/twilio setup` would.

    With `route_to`, its default number is routed to that channel too, as `/twilio route` would; with
    `bot_token`, the team's OAuth installation is stored (the token encrypted), as an install leaves it.
    `target` is the SQLite file, or a `postgresql://` URL (a test's schema).
    """
    async with await Database.connect(target, secret_keys=secret_key, pool_size=1) as db:
        await AccountStore(db).add(
            NewAccount(
                team_id=TEAM_ID,
                label=label,
                account_sid=SANDBOX_ACCOUNT_SID,
                secret=token,
                default_from=DEFAULT_FROM,
                default_service_sid=DEFAULT_SERVICE_SID,
                added_by=ADMIN_ID,
            )
        )
        if route_to is not None:
            await ConversationStore(db).add_route(
                NewRoute(
                    team_id=TEAM_ID,
                    number=DEFAULT_FROM,
                    channel_id=route_to,
                    account_label=label,
                    account_sid=SANDBOX_ACCOUNT_SID,
                    created_by=ADMIN_ID,
                )
            )
        if bot_token is not None:
            await InstallationStore(db).save(
                StoredInstallation(
                    team_id=TEAM_ID,
                    enterprise_id=None,
                    is_enterprise_install=False,
                    bot_token=bot_token,
                    installed_by=ADMIN_ID,
                )
            )

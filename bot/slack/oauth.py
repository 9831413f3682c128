"""OAuth mode: Bolt's OAuth flow over our own installation and state stores, and a cached authorize.

The stores are adapters over the `Installs` service (our storage, tokens encrypted); slack_sdk's own
SQLite stores block the event loop and cannot delete. `InstallationAuthorize` answers each request from
the per-team cache in `Installs`, so the hot path costs no database round trip, and refreshes a rotating
token shortly before it expires.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import TYPE_CHECKING, Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import OAuthStateUtils
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.installs import Installs, StoredInstallation

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# The bot scopes of manifest.yml, in its order (tests/test_manifest.py fails when they differ). A constant,
# not read at run time: an installed bot (the Docker image, a wheel) has no manifest.yml beside it.
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "users:read",
    "channels:history",
    "groups:history",
    "files:read",
    "files:write",
    "reactions:write",
)
# Refresh a rotating token this long before it expires (Slack's tokens live 12 hours).
REFRESH_BEFORE = timedelta(minutes=120)
NOT_INSTALLED = (
    "The bot has no installation for this workspace (it was removed, or the bot's database is not "
    "answering), so nothing was done. If the app was removed, a workspace admin can add it again from the "
    "bot's /slack/install page; otherwise try again in a minute."
)


def authorize_url(slack_api_url: str) -> str:
    """Slack's authorize page beside its Web API: https://slack.com/oauth/v2/authorize for the real one."""
    base = slack_api_url.rstrip("/")
    base = base.removesuffix("/api")
    return f"{base}/oauth/v2/authorize"


def to_stored(installation: Installation | Bot) -> StoredInstallation:
    """Our record of what Bolt's OAuth flow (or a token rotation) produced."""
    expires = installation.bot_token_expires_at
    scopes = installation.bot_scopes or []
    return StoredInstallation(
        team_id=installation.team_id,
        enterprise_id=installation.enterprise_id,
        is_enterprise_install=bool(installation.is_enterprise_install),
        bot_token=installation.bot_token or "",
        team_name=installation.team_name,
        enterprise_name=installation.enterprise_name,
        app_id=installation.app_id,
        bot_id=installation.bot_id,
        bot_user_id=installation.bot_user_id,
        bot_refresh_token=installation.bot_refresh_token,
        bot_token_expires_at=None if expires is None else datetime.fromtimestamp(expires, UTC),
        bot_scopes=tuple(s.strip() for s in scopes if s.strip()),
        installed_by=installation.user_id if isinstance(installation, Installation) else None,
        installed_at=datetime.fromtimestamp(installation.installed_at, UTC),
    )


def to_bot(stored: StoredInstallation) -> Bot:
    """slack_sdk's Bot for one of our installations (for Bolt and the token rotator)."""
    installation = _to_installation(stored)
    # A Bot's ids are text; an installation of ours may have none.
    installation.bot_id = stored.bot_id or ""
    installation.bot_user_id = stored.bot_user_id or ""
    return installation.to_bot()


def _to_installation(stored: StoredInstallation) -> Installation:
    expires = stored.bot_token_expires_at
    return Installation(
        app_id=stored.app_id,
        enterprise_id=stored.enterprise_id,
        enterprise_name=stored.enterprise_name,
        team_id=stored.team_id,
        team_name=stored.team_name,
        bot_token=stored.bot_token,
        bot_id=stored.bot_id,
        bot_user_id=stored.bot_user_id,
        bot_scopes=list(stored.bot_scopes),
        bot_refresh_token=stored.bot_refresh_token,
        bot_token_expires_at=None if expires is None else int(expires.timestamp()),
        user_id=stored.installed_by or "",
        is_enterprise_install=stored.is_enterprise_install,
        installed_at=stored.installed_at.timestamp(),
    )


class _OverInstalls:
    """What slack_sdk's stores need of ours: the installations service, and where to log."""

    def __init__(self, installs: Installs) -> None:
        self._installs = installs

    @property
    def logger(self) -> Logger:
        return log


class SlackInstallationStore(_OverInstalls, AsyncInstallationStore):
    """slack_sdk's installation store interface over `Installs` (bot tokens only; no user tokens kept)."""

    async def async_save(self, installation: Installation) -> None:
        await self._installs.installed(to_stored(installation))

    async def async_save_bot(self, bot: Bot) -> None:
        await self._installs.save(to_stored(bot))

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        found = await self._installs.find(
            team_id=team_id, enterprise_id=enterprise_id, is_enterprise_install=bool(is_enterprise_install)
        )
        return None if found is None else to_bot(found)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        found = await self._installs.find(
            team_id=team_id, enterprise_id=enterprise_id, is_enterprise_install=bool(is_enterprise_install)
        )
        return None if found is None else _to_installation(found)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._installs.forget(team_id=team_id, enterprise_id=enterprise_id, why="bot deleted")

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:  # a user's own token is never stored, so only the whole install matters
            await self._installs.forget(
                team_id=team_id, enterprise_id=enterprise_id, why="installation deleted"
            )

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._installs.forget(team_id=team_id, enterprise_id=enterprise_id, why="installation deleted")


class SlackStateStore(_OverInstalls, AsyncOAuthStateStore):
    """OAuth states in our database: each one good once, for 10 minutes."""

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await self._installs.issue_state()

    async def async_consume(self, state: str) -> bool:
        return await self._installs.consume_state(state)


class InstallationAuthorize(AsyncAuthorize):
    """Bolt's authorize step: the team's bot token from the cached installation, refreshed when due."""

    def __init__(
        self,
        installs: Installs,
        rotator: AsyncTokenRotator | None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._installs = installs
        self._rotator = rotator
        self._clock = clock or (lambda: datetime.now(UTC))
        self._refreshing: dict[tuple[str | None, str | None], asyncio.Lock] = {}
        # Bolt sets this from the OAuth settings; kept for its sake.
        self.token_rotation_expiration_minutes = int(REFRESH_BEFORE.total_seconds() // 60)

    async def installation(
        self, *, team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool = False
    ) -> StoredInstallation | None:
        """The installation serving this team with a token that is not about to expire; None if none.

        Also what a webhook without a Slack request (an inbound text, a status callback) uses to find
        its workspace's token.
        """
        found = await self._installs.find(
            team_id=team_id, enterprise_id=enterprise_id, is_enterprise_install=is_enterprise_install
        )
        if found is None or not self._due(found):
            return found
        lock = self._refreshing.setdefault((enterprise_id, team_id), asyncio.Lock())
        async with lock:  # one refresh per team: a refresh token is good once
            found = await self._installs.find(
                team_id=team_id, enterprise_id=enterprise_id, is_enterprise_install=is_enterprise_install
            )
            if found is None or not self._due(found) or self._rotator is None:
                return found
            try:
                fresh = await self._rotator.perform_bot_token_rotation(
                    bot=to_bot(found), minutes_before_expiration=self.token_rotation_expiration_minutes
                )
            except (SlackApiError, OSError, TimeoutError) as err:
                log.warning("could not refresh the bot token of team %s: %s", team_id, type(err).__name__)
                return found
            if fresh is None:
                return found
            stored = to_stored(fresh)
            await self._installs.save(stored)
            return stored

    def _due(self, installation: StoredInstallation) -> bool:
        expires = installation.bot_token_expires_at
        return (
            bool(installation.bot_refresh_token)
            and expires is not None
            and (expires - self._clock() <= timedelta(minutes=self.token_rotation_expiration_minutes))
        )

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        try:
            found = await self.installation(
                team_id=team_id,
                enterprise_id=enterprise_id,
                is_enterprise_install=bool(context.is_enterprise_install),
            )
        except Exception as err:  # the database down, or a key that cannot read the token: say so
            log.error("could not look up the installation of team %s: %s", team_id, type(err).__name__)
            return None
        if found is None:
            return None
        return AuthorizeResult(
            enterprise_id=found.enterprise_id or enterprise_id,
            team_id=team_id or found.team_id,
            bot_user_id=found.bot_user_id,
            bot_id=found.bot_id,
            bot_token=found.bot_token,
            bot_scopes=list(found.bot_scopes),
            user_id=user_id,
        )


# ── pages ────────────────────────────────────────────────────────────────────────────────────────────

_STATE = OAuthStateUtils()
_FAILURES = {
    "access_denied": "The install was cancelled in Slack, so nothing was installed.",
    "invalid_browser": (
        "This install was not started from this browser (the install link is missing or does not match), "
        "so nothing was installed."
    ),
    "invalid_state": (
        "This install link is not valid: it was already used, is more than 10 minutes old, or was not "
        "made by this bot. Nothing was installed."
    ),
    "missing_code": "Slack's answer carried no install code, so nothing was installed.",
    "invalid_code": (
        "Slack did not accept the install code (it may have been used already or have expired), so "
        "nothing was installed."
    ),
    "storage_error": "The bot could not store the installation, so nothing was installed.",
    "unreachable": "The bot could not reach Slack to finish the install, so nothing was installed.",
}


def page(title: str, sentences: list[str], *, status: int = 200) -> BoltResponse:
    """A small plain HTML page (every sentence escaped) that also clears the OAuth state cookie."""
    body = "".join(f"<p>{s}</p>" for s in sentences)
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f'<body style="font-family:sans-serif;max-width:40em;margin:3em auto">'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return BoltResponse(
        status=status,
        body=text,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Set-Cookie": [_STATE.build_set_cookie_for_deletion()],
        },
    )


def failure_page(reason: str, status: int) -> BoltResponse:
    """The page for an install that did not happen: what happened, and how to try again."""
    sentence = _FAILURES.get(reason) or (
        f"Slack stopped the install ({html.escape(reason[:80])}), so nothing was installed."
    )
    again = f'To try again, open <a href="{INSTALL_PATH}">{INSTALL_PATH}</a>.'
    return page("Not installed", [html.escape(sentence), again], status=status)


async def _success(args: AsyncSuccessArgs) -> BoltResponse:
    installation = args.installation
    where = installation.team_name or installation.enterprise_name or "your workspace"
    return page(
        "Installed",
        [
            f"The Twilio bot is installed in {html.escape(where)}.",
            "Next: in any channel, a workspace admin types <code>/twilio setup</code> to connect a Twilio "
            "account; after that, everyone can use <code>/twilio send</code> "
            "(see <code>/twilio help</code>).",
        ],
    )


async def _failure(args: AsyncFailureArgs) -> BoltResponse:
    log.warning("an OAuth install did not complete: %s", args.reason)
    return failure_page(args.reason, args.suggested_status_code)


def oauth_settings(settings: Settings, installs: Installs) -> AsyncOAuthSettings:
    """Bolt's OAuth settings: our stores, our pages, Slack's pages beside SLACK_API_URL."""
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=authorize_url(settings.slack_api_url),
        installation_store=SlackInstallationStore(installs),
        installation_store_bot_only=True,
        state_store=SlackStateStore(installs),
        callback_options=AsyncCallbackOptions(success=_success, failure=_failure),
        token_rotation_expiration_minutes=int(REFRESH_BEFORE.total_seconds() // 60),
        logger=log,
    )


def installation_authorize(
    settings: Settings, installs: Installs, client: AsyncWebClient
) -> InstallationAuthorize:
    """The cached authorize, refreshing rotating tokens through oauth.v2.access on SLACK_API_URL."""
    rotator = AsyncTokenRotator(
        client_id=settings.slack_client_id or "",
        client_secret=settings.slack_client_secret or "",
        client=client,
    )
    return InstallationAuthorize(installs, rotator)

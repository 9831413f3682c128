"""build_app(deps) → the Bolt AsyncApp with every listener registered."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import actions, commands, events, home, lifecycle, oauth, submissions
from bot.slack.logcontext import bind_request
from bot.slack.runner import SlackDeps

log = logging.getLogger(__name__)

ERROR_SENTENCE = (
    "Something went wrong on the bot's side while handling that, and nothing more was done. "
    "The details are in the bot's log; try again, or tell the person who runs the bot."
)


def web_client(
    token: str,
    base_url: str,
    session: Any = None,
    *,
    timeout: int = 10,
    observer: AsyncRetryHandler | None = None,
) -> AsyncWebClient:
    """The bot's Slack Web API client: its base URL from SLACK_API_URL, retrying 429s, 5xx and drops.

    `observer` goes first among the retry handlers, which slack_sdk asks about every answer: the metrics'
    counter, which never retries itself.
    """
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        timeout=timeout,
        retry_handlers=[
            *([observer] if observer is not None else []),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def build_app(
    deps: SlackDeps,
    client: AsyncWebClient,
    *,
    authorize: oauth.InstallationAuthorize | None = None,
    bind_logs: bool = True,
) -> AsyncApp:
    """The Bolt app: one workspace (SLACK_BOT_TOKEN; Bolt calls auth.test once and caches it), or OAuth mode.

    In OAuth mode (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) `client` carries no token; each request gets its
    team's token from `oauth.InstallationAuthorize`, and Bolt's OAuth flow stores installations through
    our store.
    """
    settings = deps.settings
    extra: dict[str, Any] = {}
    if settings.oauth_mode:
        extra = {
            "oauth_settings": oauth.oauth_settings(settings, deps.installs),
            "authorize": authorize or oauth.installation_authorize(settings, deps.installs, client),
            "user_facing_authorize_error_message": oauth.NOT_INSTALLED,
        }
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        # Our own server owns the routes; Bolt only dispatches.
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        # Bolt's own signature check is off because it would repeat ours: the only HTTP route into this
        # app is bot.server.slack_events, which answers 401 to any request without Slack's valid, fresh
        # signature before Bolt sees it (tests/test_security_slack_signatures.py), and Socket Mode
        # requests carry no signature at all. A new HTTP route into Bolt must check signed_by_slack first.
        request_verification_enabled=False,
        # Before authorization, so even its failures are logged with the request's id, team and user.
        # Over HTTP the door has bound them already (`logcontext.http_request`, worked out only when a line
        # is logged): the middleware would redo it for every request (`bind_logs` False).
        before_authorize=bind_request if bind_logs else None,
        **extra,
    )
    commands.register(app, deps)
    actions.register(app, deps)
    submissions.register(app, deps)
    events.register(app, deps)
    lifecycle.register(app, deps)
    home.register(app, deps)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any], logger: logging.Logger) -> BoltResponse | None:
        log.error("listener failed: %s", type(error).__name__, exc_info=error)
        response_url = body.get("response_url") if isinstance(body, dict) else None
        if isinstance(response_url, str) and response_url:
            try:
                from bot.slack.cards import error_card

                card = error_card(
                    title="That did not work",
                    sentence=ERROR_SENTENCE,
                    requested_by=str((body.get("user") or {}).get("id") or body.get("user_id") or ""),
                    reopen=None,
                )
                await deps.delivery.respond(response_url, card)
            except Exception:
                log.exception("could not tell the user about the failure")
        return None

    return app

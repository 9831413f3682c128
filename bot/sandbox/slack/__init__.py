"""A Slack stand-in on loopback: the Web API the bot calls, and a Slack client that calls the bot.

`SlackSimulator` is a real aiohttp server (port 0) with three faces:

* the Web API under ``/api/<method>`` (``chat.postMessage``, ``views.open``, ``conversations.history``,
  ``reactions.add``, the file upload chain, ``views.publish``, ``oauth.v2.access``, …) with Slack's
  error codes, Block Kit validation strict enough to catch bot bugs before Slack does, scope checks
  from the manifest, opt-in rate limits, and fault injection (429 with ``Retry-After``, 5xx,
  ``ok: false``); every call is made as the team its token belongs to (several teams, OAuth installs);
* a Slack *client*: :meth:`SlackSimulator.slash_command`, :meth:`~SlackSimulator.click`,
  :meth:`~SlackSimulator.submit_view` and :meth:`~SlackSimulator.close_view` build the payloads Slack
  builds, sign them with the signing secret and POST them to the bot's ``/slack/events``; people's
  posts, edits and deletions (:meth:`~SlackSimulator.post_message`…), App Home opens and uninstalls
  reach the bot as Events API callbacks, retried as Slack retries them;
* the playground page (``GET /``), which looks like a Slack channel, gets live updates over server-sent
  events (``GET /events``) and drives the client through JSON endpoints under ``/ui/``.

It records everything (``calls``, ``deliveries``, ``problems``) so end-to-end tests can assert on what a
user of Slack would have seen.

One module a job: `manifest` (the app's manifest), `blockkit` (validation), `workspace` (teams, people,
channels), `records` (what it keeps), `state` (what the faces share), `teams` (workspaces and tokens),
`web_api`, `response_urls`, `history`, `reactions`, `files`, `app_home`, `oauth`, `rate_limits`,
`events` (the Events API), `activity` (what people do), `socket_mode`, `client`, `page`, and
`simulator`, which puts them on one server.
"""

from bot.sandbox.slack.blockkit import MAX_MESSAGE_BLOCKS, MAX_VIEW_BLOCKS, validate_blocks, validate_view
from bot.sandbox.slack.client import escape_mrkdwn
from bot.sandbox.slack.events import ALL_EVENTS, RETRY_REASONS
from bot.sandbox.slack.files import SimFile
from bot.sandbox.slack.manifest import DEFAULT_MANIFEST, ManifestInfo, parse_yaml_subset, read_manifest
from bot.sandbox.slack.oauth import CODE_TTL
from bot.sandbox.slack.page import STATIC_DIR
from bot.sandbox.slack.rate_limits import DEFAULT_LIMITS, Limit, RateLimiter
from bot.sandbox.slack.records import ApiCall, Delivery, Json, SlackResponse
from bot.sandbox.slack.simulator import SlackSimulator
from bot.sandbox.slack.state import CLIENT_ID, CLIENT_SECRET, MAX_BLOCKS_JSON, MAX_VIEW_STACK
from bot.sandbox.slack.teams import TOKEN_TTL
from bot.sandbox.slack.web_api import METHOD_SCOPES, RESPONSE_URL_MAX_USES, RESPONSE_URL_TTL, TRIGGER_TTL
from bot.sandbox.slack.workspace import (
    ADMIN_ID,
    API_APP_ID,
    BOT_ID,
    BOT_USER_ID,
    GENERAL_ID,
    MEMBER_ID,
    OPS_ID,
    PRIVATE_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    VERIFICATION_TOKEN,
    Caller,
    Team,
)
from bot.sandbox.slack.workspace import _Channel as _Channel  # benchmarks add channels with it

__all__ = [
    "ADMIN_ID",
    "ALL_EVENTS",
    "API_APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CODE_TTL",
    "DEFAULT_LIMITS",
    "DEFAULT_MANIFEST",
    "GENERAL_ID",
    "MAX_BLOCKS_JSON",
    "MAX_MESSAGE_BLOCKS",
    "MAX_VIEW_BLOCKS",
    "MAX_VIEW_STACK",
    "MEMBER_ID",
    "METHOD_SCOPES",
    "OPS_ID",
    "PRIVATE_ID",
    "RESPONSE_URL_MAX_USES",
    "RESPONSE_URL_TTL",
    "RETRY_REASONS",
    "STATIC_DIR",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "TOKEN_TTL",
    "TRIGGER_TTL",
    "VERIFICATION_TOKEN",
    "ApiCall",
    "Caller",
    "Delivery",
    "Json",
    "Limit",
    "ManifestInfo",
    "RateLimiter",
    "SimFile",
    "SlackResponse",
    "SlackSimulator",
    "Team",
    "escape_mrkdwn",
    "parse_yaml_subset",
    "read_manifest",
    "validate_blocks",
    "validate_view",
]

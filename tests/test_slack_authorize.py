"""The OAuth-mode authorize step over the real store: per team, org-wide installs, the cache."""

from __future__ import annotations

from slack_bolt.context.async_context import AsyncBoltContext

from bot.installs import Installs
from bot.slack.oauth import InstallationAuthorize
from storage.audit import AuditLog
from storage.db import Database
from storage.installations import InstallationStore, OAuthStates, StoredInstallation

ORG_TOKEN = "xoxb-org-wide-token"
TEAM_TOKEN = "xoxb-own-team-token"


def _authorize(db: Database) -> tuple[InstallationAuthorize, Installs]:
    installs = Installs(InstallationStore(db), OAuthStates(db), AuditLog(db))
    return InstallationAuthorize(installs, None), installs


async def test_an_org_wide_install_authorizes_every_team_of_its_org(db: Database) -> None:
    """Enterprise Grid: a team of the org without its own install gets the org's token; its own wins."""
    authorize, installs = _authorize(db)
    await installs.save(
        StoredInstallation(team_id=None, enterprise_id="E1", is_enterprise_install=True, bot_token=ORG_TOKEN)
    )
    await installs.save(
        StoredInstallation(
            team_id="T2", enterprise_id="E1", is_enterprise_install=False, bot_token=TEAM_TOKEN
        )
    )
    org_request = AsyncBoltContext({"is_enterprise_install": True})
    found = await authorize(context=AsyncBoltContext(), enterprise_id="E1", team_id="T1", user_id="U1")
    assert found is not None and (found.bot_token, found.team_id, found.enterprise_id) == (
        ORG_TOKEN,
        "T1",
        "E1",
    )
    own = await authorize(context=AsyncBoltContext(), enterprise_id="E1", team_id="T2", user_id="U1")
    assert own is not None and own.bot_token == TEAM_TOKEN
    org = await authorize(context=org_request, enterprise_id="E1", team_id=None, user_id="U1")
    assert org is not None and org.bot_token == ORG_TOKEN
    assert await authorize(context=AsyncBoltContext(), enterprise_id="E2", team_id="T1", user_id="U1") is None


async def test_forgetting_the_org_drops_its_teams_from_the_cache(db: Database) -> None:
    """After an org-wide uninstall, its teams are no longer authorized, even from memory."""
    authorize, installs = _authorize(db)
    await installs.save(
        StoredInstallation(team_id=None, enterprise_id="E1", is_enterprise_install=True, bot_token=ORG_TOKEN)
    )
    assert await authorize(context=AsyncBoltContext(), enterprise_id="E1", team_id="T1", user_id="U1")
    await installs.forget(team_id=None, enterprise_id="E1", is_enterprise_install=True, why="test")
    assert await authorize(context=AsyncBoltContext(), enterprise_id="E1", team_id="T1", user_id="U1") is None

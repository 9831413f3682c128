"""OAuth v2: the authorize page, ``oauth.v2.access`` (codes and token rotation), and giving tokens back.

A person installing the app visits ``GET /oauth/v2/authorize?client_id=…&scope=…&state=…&redirect_uri=…``
(Bolt builds that URL; point its ``authorization_url`` here). The page lists the teams to install into,
each with an Allow link, and a Cancel link; following one redirects to ``redirect_uri`` (or
``oauth_redirect_url`` when the request has none) with ``code`` and ``state``, or with
``error=access_denied``. Tests skip the page: `authorize(url, team_id=…, approve=True)` returns where
the browser would be sent. Scopes the app does not have (the manifest's) get ``error=invalid_scope``.

``oauth.v2.access`` (client id and secret as Basic auth or form fields) exchanges a code, once, within
ten minutes, for Slack's OAuth v2 answer (``access_token`` xoxb-…, ``token_type: bot``, ``scope``,
``bot_user_id``, ``app_id``, ``team``, ``enterprise``, ``authed_user``, ``is_enterprise_install``). With
token rotation (the manifest's ``token_rotation_enabled`` or ``token_rotation=True``) the token is
``xoxe.xoxb-…`` and expires in 12 hours, and the answer has ``refresh_token`` and ``expires_in``;
``grant_type=refresh_token`` trades a refresh token for a new pair (the old refresh token is spent).
``auth.revoke`` revokes the calling token; ``apps.uninstall`` removes the app from the caller's team
(both raise ``tokens_revoked``; the uninstall also ``app_uninstalled``). `installs` records each step.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web

from bot.sandbox.slack.records import Json, _ApiError
from bot.sandbox.slack.teams import TOKEN_TTL
from bot.sandbox.slack.web_api import WebApi
from bot.sandbox.slack.workspace import API_APP_ID, Caller, Team

CODE_TTL = 600.0


@dataclass
class _Code:
    value: str
    team_id: str
    user_id: str
    scopes: frozenset[str]
    redirect_uri: str | None
    issued: float
    used: bool = False


def _with_query(url: str, params: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


class OAuth(WebApi):
    """The authorize page, code exchange, token rotation, revocation and uninstall through the API."""

    def authorize(
        self,
        authorize_url: str,
        *,
        team_id: str | None = None,
        approve: bool = True,
        user_id: str | None = None,
    ) -> str:
        """A person answers the authorize page for `team_id`: the URL their browser is sent to next.

        `authorize_url` is the URL the bot sent them to (or just its query). ValueError when Slack would
        show an error page instead (wrong client_id, nowhere to redirect).
        """
        query = urlsplit(authorize_url).query if "?" in authorize_url else authorize_url
        return self._decide(dict(parse_qsl(query)), team_id, approve, user_id)

    def _decide(self, params: dict[str, str], team_id: str | None, approve: bool, user_id: str | None) -> str:
        if params.get("client_id") != self.client_id:
            raise ValueError("invalid_client_id: the client_id is not this app's")
        redirect = params.get("redirect_uri") or self.oauth_redirect_url
        if not redirect or urlsplit(redirect).scheme not in ("http", "https"):
            raise ValueError("bad_redirect_uri: no redirect_uri, and no oauth_redirect_url configured")
        team = self._team(team_id)
        state = {"state": params["state"]} if "state" in params else {}
        scopes = frozenset(s for s in params.get("scope", "").split(",") if s)
        record: Json = {"team_id": team.id, "scopes": sorted(scopes), "time": self._clock()}
        self.installs.append(record)
        if not approve:
            record["outcome"] = "denied"
            return _with_query(redirect, {"error": "access_denied", **state})
        if self.scopes is not None and not scopes <= self.scopes:
            record["outcome"] = "invalid_scope"
            return _with_query(redirect, {"error": "invalid_scope", **state})
        code = _Code(
            value=f"{team.id[1:]}.{secrets.token_hex(16)}",
            team_id=team.id,
            user_id=user_id or team.admin_id,
            scopes=scopes,
            redirect_uri=params.get("redirect_uri"),
            issued=self._clock(),
        )
        self._oauth_codes[code.value] = code
        record["outcome"] = "approved"
        return _with_query(redirect, {"code": code.value, **state})

    # ----- the page ------------------------------------------------------------------------------

    def _add_oauth_routes(self, app: web.Application) -> None:
        app.router.add_get("/oauth/v2/authorize", self._handle_authorize)

    async def _handle_authorize(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        try:
            if "decision" in params:
                target = self._decide(params, params.get("team") or None, params["decision"] == "allow", None)
                raise web.HTTPFound(target)
            self._decide_preview(params)
        except ValueError as err:
            return web.Response(
                status=400, text=_page(f"<p>{html.escape(str(err))}</p>"), content_type="text/html"
            )
        base = {k: v for k, v in params.items() if k not in ("team", "decision")}
        links = "".join(
            f'<li><a href="?{html.escape(urlencode({**base, "team": t.id, "decision": "allow"}))}">'
            f"Allow in {html.escape(t.name)} ({t.id})</a></li>"
            for t in self.teams.values()
        )
        cancel = html.escape(urlencode({**base, "decision": "deny"}))
        scopes = html.escape(params.get("scope", "").replace(",", ", ") or "none")
        body = (
            f"<h1>{html.escape(self.manifest.app_name)} is requesting permission</h1>"
            f'<p>Scopes: {scopes}</p><ul>{links}</ul><p><a href="?{cancel}">Cancel</a></p>'
        )
        return web.Response(text=_page(body), content_type="text/html")

    def _decide_preview(self, params: dict[str, str]) -> None:
        if params.get("client_id") != self.client_id:
            raise ValueError("invalid_client_id: the client_id is not this app's")
        if not (params.get("redirect_uri") or self.oauth_redirect_url):
            raise ValueError("bad_redirect_uri: no redirect_uri, and no oauth_redirect_url configured")

    # ----- the Web API ---------------------------------------------------------------------------

    def _check_client(self, args: Json) -> None:
        if args.get("client_id") != self.client_id:
            raise _ApiError("invalid_client_id")
        if args.get("client_secret") != self.client_secret:
            raise _ApiError("bad_client_secret")

    def _oauth_v2_access(self, args: Json) -> Json:
        self._check_client(args)
        grant = args.get("grant_type") or "authorization_code"
        if grant == "refresh_token":
            team_id = self._refresh_tokens.pop(str(args.get("refresh_token") or ""), None)
            if team_id is None:
                raise _ApiError("invalid_refresh_token")
            newest = self.bot_token_of(team_id)
            scopes = self.token_scopes(newest) if newest else None
            return self._grant(self._team(team_id), scopes or frozenset(), None)
        if grant != "authorization_code":
            raise _ApiError("invalid_grant_type")
        code = self._oauth_codes.get(str(args.get("code") or ""))
        if code is None or code.used or self._clock() - code.issued > CODE_TTL:
            raise _ApiError("invalid_code")
        code.used = True
        if code.redirect_uri is not None and args.get("redirect_uri") not in (None, code.redirect_uri):
            raise _ApiError("bad_redirect_uri")
        self.installs.append({"team_id": code.team_id, "outcome": "exchanged", "time": self._clock()})
        return self._grant(self._team(code.team_id), code.scopes, code.user_id)

    def _grant(self, team: Team, scopes: frozenset[str], user_id: str | None) -> Json:
        current = self.bot_token_of(team.id)
        if current is not None and not self.token_rotation and user_id is not None:
            token = current  # Slack hands the same bot token back on a reinstall
            self._tokens[token].scopes = scopes | (self._tokens[token].scopes or frozenset())
        else:
            token = self.issue_bot_token(team.id, scopes)
        enterprise = {"id": team.enterprise_id, "name": team.enterprise_id} if team.enterprise_id else None
        answer: Json = {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": ",".join(sorted(self._tokens[token].scopes or scopes)),
            "bot_user_id": team.bot_user_id,
            "app_id": API_APP_ID,
            "team": {"name": team.name, "id": team.id},
            "enterprise": enterprise,
            "is_enterprise_install": False,
        }
        if user_id is not None:
            answer["authed_user"] = {"id": user_id}
        if self.token_rotation:
            refresh = f"xoxe-1-{secrets.token_hex(20)}"
            self._refresh_tokens[refresh] = team.id
            answer.update(refresh_token=refresh, expires_in=int(TOKEN_TTL))
        return answer

    def _auth_revoke(self, args: Json, caller: Caller) -> Json:
        if args.get("test") in ("true", "1", True):
            return {"ok": True, "revoked": False}
        self._tokens[caller.token].revoked = True
        event = self._tokens_revoked_event(caller.team, [caller.token])
        self._raise_event(caller.team, event)
        return {"ok": True, "revoked": True}

    def _apps_uninstall(self, args: Json, caller: Caller) -> Json:
        self._check_client(args)
        team, revoked = self._revoke_all(caller.team.id)
        self._raise_event(team, self._tokens_revoked_event(team, revoked))
        self._raise_event(team, {"type": "app_uninstalled", "event_ts": self._next_ts()})
        return {"ok": True}


def _page(body: str) -> str:
    head = '<meta charset="utf-8"><title>Slack</title>'
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


METHODS = {"auth.revoke": OAuth._auth_revoke, "apps.uninstall": OAuth._apps_uninstall}
TOKENLESS_METHODS = {"oauth.v2.access": OAuth._oauth_v2_access}

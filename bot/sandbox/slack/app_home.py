"""App Home: ``views.publish`` keeps one Home view per person and team; `open_app_home` raises the event.

`await open_app_home(user_id)` is a person opening the app's Home tab: the bot gets ``app_home_opened``
(with the view it last published for them, if any) and is expected to call ``views.publish``;
``home_views[(team_id, user_id)]`` is what that person would see.
"""

from __future__ import annotations

import copy

from bot.sandbox.slack.blockkit import validate_view
from bot.sandbox.slack.records import Delivery, Json, _ApiError, _json_arg
from bot.sandbox.slack.web_api import WebApi
from bot.sandbox.slack.workspace import Caller


class AppHome(WebApi):
    """``views.publish`` and the ``app_home_opened`` event."""

    def home_view(self, user_id: str) -> Json | None:
        """The Home view the bot published for a person (in their team), or None."""
        user = self._user(user_id)
        view = self.home_views.get((self._team_of_user(user).id, user.id))
        return copy.deepcopy(view) if view is not None else None

    async def open_app_home(self, user_id: str, tab: str = "home") -> list[Delivery]:
        """A person opens the app's Home (or Messages) tab; returns the event's deliveries."""
        user = self._user(user_id)
        team = self._team_of_user(user)
        event: Json = {
            "type": "app_home_opened",
            "user": user.id,
            "channel": "D" + user.id[1:],
            "tab": tab,
            "event_ts": self._next_ts(),
        }
        view = self.home_views.get((team.id, user.id))
        if view is not None:
            event["view"] = copy.deepcopy(view)
        task = self._raise_event(team, event)
        return await task if task is not None else []

    def _views_publish(self, args: Json, caller: Caller) -> Json:
        user_id = str(args.get("user_id") or "")
        user = self.users.get(user_id)
        if user is None or self._team_of_user(user).id != caller.team.id:
            raise _ApiError("user_not_found")
        spec = _json_arg(args.get("view"), "view")
        errors = validate_view(spec)
        if not errors and spec.get("type") != "home":
            errors = ["/view/type: views.publish takes a view of type 'home'"]
        if errors:
            raise _ApiError("invalid_arguments", errors=errors, response_metadata={"messages": errors})
        key = (caller.team.id, user.id)
        previous = self.home_views.get(key)
        if args.get("hash") and previous is not None and args["hash"] != previous["hash"]:
            raise _ApiError("hash_conflict")
        view_id = previous["id"] if previous is not None else self._short_id("V")
        view = self._build_view(spec, view_id=view_id, root_id=view_id, previous_id=None, team=caller.team)
        self.home_views[key] = view
        self._broadcast("home_published", {"team_id": caller.team.id, "user_id": user.id, "view": view})
        return {"ok": True, "view": copy.deepcopy(view)}


METHODS = {"views.publish": AppHome._views_publish}

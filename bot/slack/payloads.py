"""The shape Slack's requests always have, checked before Bolt or a listener reads one.

Bolt and the listeners index into payloads as Slack documents them (`body["view"]["state"]["values"]`,
`body["user"]["id"]`…). A signed request that is not shaped like that did not come from Slack's own
servers (or a proxy mangled it), so it is turned away with one sentence instead of failing somewhere
inside with a 500. What is inside the fields (a phone number, a button value) is still the listeners'
to judge: this only checks the containers and their types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["shape_problem"]

_INTERACTIVE = {"block_actions", "view_submission", "view_closed", "shortcut", "message_action"}


class _Bad(Exception):
    pass


def _obj(parent: Mapping[str, Any], key: str, *, required: bool = False, nullable: bool = False) -> Any:
    value = parent.get(key)
    if value is None:
        if required or (key in parent and not nullable):
            raise _Bad(f"'{key}' must be an object")
        return None
    if not isinstance(value, dict):
        raise _Bad(f"'{key}' must be an object")
    return value


def _str(parent: Mapping[str, Any], key: str, *, required: bool = False, nullable: bool = True) -> None:
    value = parent.get(key)
    if value is None:
        if required or (key in parent and not nullable):
            raise _Bad(f"'{key}' must be text")
        return
    if not isinstance(value, str):
        raise _Bad(f"'{key}' must be text")


def _blocks(parent: Mapping[str, Any], key: str) -> None:
    value = parent.get(key)
    if value is not None and not (isinstance(value, list) and all(isinstance(b, dict) for b in value)):
        raise _Bad(f"'{key}' must be a list of blocks")


def _view(view: Mapping[str, Any], *, submitted: bool) -> None:
    _str(view, "id", required=submitted)
    _str(view, "callback_id", required=submitted)
    _str(view, "type", required=submitted)
    if view.get("type") == "workflow_step":
        raise _Bad("workflow steps are not something this app offers")
    for key in ("private_metadata", "hash", "external_id", "root_view_id", "previous_view_id"):
        _str(view, key)
    _blocks(view, "blocks")
    state = _obj(view, "state", required=submitted)
    if state is None:
        return
    values = _obj(state, "values", required=True)
    for block in values.values():
        if not isinstance(block, dict) or not all(isinstance(action, dict) for action in block.values()):
            raise _Bad("each entry of the view's 'state.values' must map action ids to objects")


def _interaction(payload: Mapping[str, Any]) -> None:
    kind = payload.get("type")
    if not isinstance(kind, str):
        raise _Bad("'type' must be text")
    user = _obj(payload, "user", required=kind in _INTERACTIVE)
    if user is not None:
        _str(user, "id", required=True, nullable=False)
        _str(user, "team_id")
    for key in ("team", "enterprise", "channel", "container", "message"):
        _obj(payload, key, nullable=True)
    for key in ("trigger_id", "response_url", "api_app_id", "callback_id"):
        _str(payload, key)
    urls = payload.get("response_urls")
    if urls is not None and not (isinstance(urls, list) and all(isinstance(u, dict) for u in urls)):
        raise _Bad("'response_urls' must be a list of objects")
    if kind in {"view_submission", "view_closed"}:
        _view(_obj(payload, "view", required=True), submitted=True)
    elif payload.get("view") is not None:
        _view(_obj(payload, "view"), submitted=False)
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions or not all(isinstance(a, dict) for a in actions):
            raise _Bad("'actions' must be a non-empty list of objects")
        for action in actions:
            _str(action, "action_id", required=True, nullable=False)
            _str(action, "block_id")
            _str(action, "value")


def _has_payload_field(form: str) -> bool:
    """Whether the form has a `payload` field, decoding only the names (as parse_qsl does).

    A slash command (the hot path) has none; its values are left undecoded, which Bolt does anyway.
    """
    for pair in form.split("&"):
        name = pair.split("=", 1)[0]
        if "%" in name or "+" in name:
            name = unquote(name.replace("+", " "))
        if name == "payload":
            return True
    return False


def shape_problem(body: bytes, content_type: str) -> str | None:
    """None when `body` is shaped like a request Slack sends, else a sentence saying what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "This request is not UTF-8 text, so it did not come from Slack."
    try:
        if content_type == "application/json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise _Bad("the body must be a JSON object")
            _str(data, "type")
            event = _obj(data, "event")
            if event is not None:
                _str(event, "type", required=True, nullable=False)
            return None
        if not _has_payload_field(text):
            return None  # a slash command: every form field is text already
        form = dict(parse_qsl(text, keep_blank_values=True))
        try:
            payload = json.loads(form["payload"])
        except (ValueError, RecursionError):
            raise _Bad("'payload' must be JSON") from None
        if not isinstance(payload, dict):
            raise _Bad("'payload' must be a JSON object")
        _interaction(payload)
    except _Bad as err:
        return f"This request is not shaped like one from Slack: {err}."
    except (ValueError, RecursionError):
        return "This request's body cannot be read as a form or as JSON."
    return None

"""The Slack client: what a person does in Slack, sent to the bot as Slack sends it (signed, or by socket).

Slash commands, clicks in messages and modals, modal submissions and closes; the bot's answers are
shown the way Slack shows them.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from bot.sandbox.slack.blockkit import _empty_state, _is_empty, _iter_elements, validate_view
from bot.sandbox.slack.records import (
    Delivery,
    Json,
    SlackResponse,
    _ApiError,
    _OpenView,
    _ResponseUrl,
    _Trigger,
)
from bot.sandbox.slack.socket_mode import SocketMode
from bot.sandbox.slack.workspace import ADMIN_ID, API_APP_ID, GENERAL_ID, VERIFICATION_TOKEN, _Channel, _User


def escape_mrkdwn(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` the way Slack does in text it hands to apps."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Client(SocketMode):
    """A person's actions in Slack, delivered to the bot's ``/slack/events`` (or its socket)."""

    def post_user_message(self, text: str, *, user_id: str = ADMIN_ID, channel_id: str = GENERAL_ID) -> Json:
        """A plain message typed by a person, stored only (`post_message` also sends the bot its event)."""
        user = self._user(user_id)
        message: Json = {
            "type": "message",
            "user": user.id,
            "text": escape_mrkdwn(text),
            "ts": self._next_ts(),
            "team": self._team_of_user(user).id,
        }
        self._store_message(self._channel(channel_id).id, message)
        return copy.deepcopy(message)

    def _issue_trigger(self, user_id: str, view_id: str | None = None) -> str:
        team = self._team_of_user(self._user(user_id))
        trigger = _Trigger(
            id=f"{next(self._seq)}{secrets.randbelow(10**6):06d}.{team.id[1:]}.{secrets.token_hex(16)}",
            issued=self._clock(),
            user_id=user_id,
            view_id=view_id,
        )
        self._triggers[trigger.id] = trigger
        return trigger.id

    def _issue_response_url(
        self, channel_id: str, user_id: str, *, source_ts: str | None = None, ephemeral: bool = False
    ) -> str:
        rid = (
            f"{self._team_of_channel(self._channel(channel_id)).id}-{next(self._seq)}-{secrets.token_hex(12)}"
        )
        self._response_urls[rid] = _ResponseUrl(
            rid, channel_id, user_id, self._clock(), source_ts, source_ephemeral=ephemeral
        )
        return f"{self.url}/response/{rid}"

    def _user_payload(self, user_id: str) -> Json:
        user = self._user(user_id)
        return {
            "id": user.id,
            "username": user.name,
            "name": user.name,
            "team_id": self._team_of_user(user).id,
        }

    def _interaction_base(self, kind: str, user_id: str) -> Json:
        team = self._team_of_user(self._user(user_id))
        enterprise = {"id": team.enterprise_id, "name": team.enterprise_id} if team.enterprise_id else None
        return {
            "type": kind,
            "user": self._user_payload(user_id),
            "api_app_id": API_APP_ID,
            "token": VERIFICATION_TOKEN,
            "team": {"id": team.id, "domain": team.domain},
            "enterprise": enterprise,
            "is_enterprise_install": False,
        }

    def _use_socket(self, socket: bool | None) -> bool:
        return self.socket_mode if socket is None else socket

    async def _deliver(
        self, kind: str, payload: Json, body: bytes, content_type: str, *, socket: bool | None = None
    ) -> SlackResponse:
        if self._use_socket(socket):
            response, envelope = await self._deliver_socket(kind, payload)
            self.deliveries.append(Delivery(kind, payload, envelope, {}, response, transport="socket"))
            if response.error:
                self._problem(f"{kind}: the bot gave no answer over the socket ({response.error})")
            return response
        if not self.bot_events_url:
            raise RuntimeError("set_bot_url() first: the simulator does not know where the bot listens")
        if self._session is None:
            raise RuntimeError("start() the simulator first")
        headers = self._bot_headers(body, content_type)
        response = await self._post_to_bot(body, headers)
        self.deliveries.append(Delivery(kind, payload, body, headers, response))
        if response.error:
            self._problem(f"{kind}: the bot gave no answer ({response.error})")
        elif response.status != 200:
            self._problem(f"{kind}: the bot answered HTTP {response.status}")
        return response

    async def _deliver_interaction(self, payload: Json, *, socket: bool | None = None) -> SlackResponse:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self._deliver(
            payload["type"], payload, body, "application/x-www-form-urlencoded", socket=socket
        )

    async def slash_command(
        self,
        text: str,
        *,
        user_id: str = ADMIN_ID,
        channel_id: str = GENERAL_ID,
        command: str = "/twilio",
        socket: bool | None = None,
    ) -> SlackResponse:
        """Run a slash command as a user: signed form POST to the bot, its ack shown like Slack shows it.

        Over the Socket Mode connection instead when ``socket`` (default: the simulator's ``socket_mode``).
        """
        user, channel = self._user(user_id), self._channel(channel_id)
        echo_ts, ack_ts = self._next_ts(), self._next_ts()
        team = self._team_of_channel(channel)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": team.id,
            "team_domain": team.domain,
            "channel_id": channel.id,
            "channel_name": "privategroup" if channel.is_private else channel.name,
            "user_id": user.id,
            "user_name": user.name,
            "command": command,
            "text": escape_mrkdwn(text),
            "api_app_id": API_APP_ID,
            **({"enterprise_id": team.enterprise_id} if team.enterprise_id else {}),
            "is_enterprise_install": "false",
            # Its original is the ephemeral ack, which `delete_original`/`replace_original` act on.
            "response_url": self._issue_response_url(channel.id, user.id, source_ts=ack_ts, ephemeral=True),
            "trigger_id": self._issue_trigger(user.id),
        }
        echo = {
            "channel": channel.id,
            "user": user.id,
            "text": f"{command} {text}".strip(),
            "ts": echo_ts,
        }
        self._echoes.append(echo)
        self._broadcast("echo", {"echo": echo})
        # The ack is shown where it belongs (ack_ts), before anything the bot posts while we read its answer.
        response = await self._deliver(
            "slash_command",
            dict(fields),
            urlencode(fields).encode(),
            "application/x-www-form-urlencoded",
            socket=socket,
        )
        self._show_command_answer(response, channel, user, f"{command} {text}".strip(), echo["ts"], ack_ts)
        return response

    def _show_command_answer(
        self, response: SlackResponse, channel: _Channel, user: _User, line: str, user_ts: str, ack_ts: str
    ) -> None:
        command = line.split(" ", 1)[0]
        if response.error or response.status != 200:
            error = response.error or ("http_client_error" if response.status < 500 else "http_service_error")
            self._slack_says(channel.id, user.id, f'{command} failed with the error "{error}"', ack_ts)
            return
        if not response.body.strip():
            return
        answer = response.json()
        if not isinstance(answer, dict):
            self._add_ephemeral(channel.id, user.id, response.body, None, source="ack", ts=ack_ts)
            return
        if "text" not in answer and "blocks" not in answer:
            return
        try:
            body_text, blocks = self._message_content(answer)
        except _ApiError as exc:
            self._problem(f"slash_command: Slack would reject the ack: {exc.error} {exc.extra or ''}".strip())
            self._slack_says(channel.id, user.id, f'{command} failed with the error "invalid_blocks"', ack_ts)
            return
        if answer.get("response_type") == "in_channel":
            self._store_message(
                channel.id,
                {
                    "type": "message",
                    "user": user.id,
                    "text": escape_mrkdwn(line),
                    "ts": user_ts,
                    "team": user.team_id or self.team_id,
                },
            )
            team = self._team_of_channel(channel)
            self._store_message(channel.id, self._bot_message(body_text, blocks, ts=ack_ts, team=team))
        else:
            self._add_ephemeral(channel.id, user.id, body_text, blocks, source="ack", ts=ack_ts)

    def _action(self, block: Json, element: Json, value: Any) -> Json:
        kind = element.get("type", "button")
        action: Json = {
            "action_id": element.get("action_id"),
            "block_id": block.get("block_id"),
            "type": kind,
            "action_ts": self._next_ts(),
        }
        if kind == "button":
            action["text"] = element.get("text")
            chosen = value if value is not None else element.get("value")
            if chosen is not None:
                action["value"] = chosen
            if element.get("style"):
                action["style"] = element["style"]
        elif kind in {"static_select", "overflow", "radio_buttons", "external_select"}:
            options = element.get("options") or [
                o for g in element.get("option_groups") or [] for o in g.get("options") or []
            ]
            action["selected_option"] = next((o for o in options if o.get("value") == value), None)
        elif kind == "datepicker":
            action["selected_date"] = value
        elif kind == "timepicker":
            action["selected_time"] = value
        elif kind == "datetimepicker":
            action["selected_date_time"] = value
        else:
            action["value"] = value
        return action

    @staticmethod
    def _find_element(blocks: list[Json], action_id: str, block_id: str | None) -> tuple[Json, Json]:
        for block, element in _iter_elements(blocks):
            if element.get("action_id") == action_id and block_id in {None, block.get("block_id")}:
                return block, element
        raise LookupError(f"no element with action_id {action_id!r}")

    async def click(
        self,
        channel_id: str,
        message_ts: str,
        action_id: str,
        *,
        user_id: str = ADMIN_ID,
        value: Any = None,
        block_id: str | None = None,
        socket: bool | None = None,
    ) -> SlackResponse:
        """Click a button (or pick a value) in a channel message or an ephemeral one: ``block_actions``."""
        channel = self._channel(channel_id)
        ephemeral = next((e for e in self.ephemerals if e["ts"] == message_ts and e["user"] == user_id), None)
        message = ephemeral
        if message is None:
            try:
                message = self._find_message(channel.id, message_ts)
            except _ApiError:
                raise LookupError(f"no message {message_ts} in {channel_id}") from None
        block, element = self._find_element(message.get("blocks") or [], action_id, block_id)
        payload = self._interaction_base("block_actions", user_id)
        payload.update(
            {
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel.id,
                    "is_ephemeral": ephemeral is not None,
                },
                "trigger_id": self._issue_trigger(user_id),
                "channel": {"id": channel.id, "name": "privategroup" if channel.is_private else channel.name},
                "state": {"values": {}},
                "response_url": self._issue_response_url(
                    channel.id, user_id, source_ts=message_ts, ephemeral=ephemeral is not None
                ),
                "actions": [self._action(block, element, value)],
            }
        )
        if ephemeral is None:
            payload["message"] = copy.deepcopy(message)
        return await self._deliver_interaction(payload, socket=socket)

    def _open_view(self, view_id: str) -> _OpenView:
        try:
            return self._views[view_id]
        except KeyError:
            raise LookupError(f"no open view {view_id!r}") from None

    def _state_values(self, view: Json, values: Mapping[str, Mapping[str, Any]]) -> Json:
        """``state.values`` as Slack sends it: every input block, empty ones as None, ``type`` filled in."""
        state: Json = {}
        for block, element in _iter_elements(view.get("blocks") or []):
            if block.get("type") != "input" and block.get("block_id") not in values:
                continue
            given = (values.get(block["block_id"]) or {}).get(element["action_id"])
            if given is None:
                entry = _empty_state(element)
            else:
                # Slack sends an emptied field as null, never as "".
                entry = {"type": element.get("type"), **{k: None if v == "" else v for k, v in given.items()}}
            state.setdefault(block["block_id"], {})[element["action_id"]] = entry
        return state

    @staticmethod
    def _client_errors(view: Json, state: Json) -> dict[str, str]:
        """What Slack's own client refuses before sending: empty required fields, length limits."""
        errors: dict[str, str] = {}
        for block in view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            element = block.get("element") or {}
            entry = state.get(block["block_id"], {}).get(element.get("action_id"), {})
            if _is_empty(entry):
                if not block.get("optional"):
                    errors[block["block_id"]] = "Please complete this required field."
                continue
            value = entry.get("value")
            if element.get("type") == "plain_text_input" and isinstance(value, str):
                if element.get("max_length") is not None and len(value) > element["max_length"]:
                    errors[block["block_id"]] = f"Must be {element['max_length']} characters or fewer."
                elif element.get("min_length") is not None and len(value) < element["min_length"]:
                    errors[block["block_id"]] = f"Must be at least {element['min_length']} characters."
        return errors

    async def click_in_view(
        self,
        view_id: str,
        action_id: str,
        *,
        user_id: str | None = None,
        value: Any = None,
        block_id: str | None = None,
        values: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> SlackResponse:
        """Click a button (or change a dispatching input) inside an open modal: ``block_actions``."""
        ov = self._open_view(view_id)
        user = user_id or ov.user_id
        block, element = self._find_element(ov.view.get("blocks") or [], action_id, block_id)
        view = copy.deepcopy(ov.view)
        view["state"] = {"values": self._state_values(view, values or {})}
        payload = self._interaction_base("block_actions", user)
        payload.update(
            {
                "container": {"type": "view", "view_id": view_id},
                "trigger_id": self._issue_trigger(user, view_id),
                "view": view,
                "actions": [self._action(block, element, value)],
            }
        )
        return await self._deliver_interaction(payload)

    async def click_in_home(
        self, user_id: str, action_id: str, *, value: Any = None, block_id: str | None = None
    ) -> SlackResponse:
        """Click a button in the Home view the bot published for a person: ``block_actions``."""
        user = self._user(user_id)
        view = self.home_views.get((self._team_of_user(user).id, user.id))
        if view is None:
            raise LookupError(f"no Home view published for {user_id}")
        block, element = self._find_element(view.get("blocks") or [], action_id, block_id)
        view = copy.deepcopy(view)
        view["state"] = {"values": {}}
        payload = self._interaction_base("block_actions", user.id)
        payload.update(
            {
                "container": {"type": "view", "view_id": view["id"]},
                "trigger_id": self._issue_trigger(user.id),
                "view": view,
                "actions": [self._action(block, element, value)],
            }
        )
        return await self._deliver_interaction(payload)

    async def submit_view(
        self,
        view_id: str,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        user_id: str | None = None,
        validate: bool = True,
        socket: bool | None = None,
    ) -> SlackResponse:
        """Press the modal's submit button: ``view_submission``, then act on the bot's ``response_action``.

        ``values`` is ``{block_id: {action_id: value-dict}}`` as in ``state.values`` (``type`` may be
        left out). With ``validate`` (Slack's client does this) an empty required field or a value over
        ``max_length`` is flagged in the modal and nothing is sent: the answer has
        ``error="client_validation"`` and the errors as its JSON body.
        """
        ov = self._open_view(view_id)
        user = user_id or ov.user_id
        view = copy.deepcopy(ov.view)
        view["state"] = {"values": self._state_values(view, values or {})}
        if validate:
            client_errors = self._client_errors(view, view["state"]["values"])
            if client_errors:
                ov.errors = client_errors
                self._broadcast("view_errors", {"view_id": view_id, "errors": client_errors})
                body = json.dumps({"response_action": "errors", "errors": client_errors})
                return SlackResponse(0, body, {}, "client_validation")
        payload = self._interaction_base("view_submission", user)
        payload.update({"trigger_id": self._issue_trigger(user, view_id), "view": view, "response_urls": []})
        response = await self._deliver_interaction(payload, socket=socket)
        self._apply_submission_answer(ov, response)
        return response

    def _apply_submission_answer(self, ov: _OpenView, response: SlackResponse) -> None:
        view_id = ov.view["id"]
        if response.error or response.status != 200:
            self._broadcast("view_problem", {"view_id": view_id, "text": "We had some trouble connecting."})
            return
        if not response.body.strip():
            self._close_views(ov.user_id, [view_id])
            return
        answer = response.json()
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or action not in {"errors", "update", "push", "clear"}:
            self._problem(f"view_submission: Slack cannot use this answer: {response.body[:200]}")
            self._broadcast("view_problem", {"view_id": view_id, "text": "We had some trouble connecting."})
            return
        if action == "errors":
            errors = answer.get("errors")
            input_ids = {b.get("block_id") for b in ov.view.get("blocks") or [] if b.get("type") == "input"}
            if not isinstance(errors, dict) or not errors:
                self._problem("view_submission: response_action errors needs a non-empty errors object")
                return
            bad = sorted(str(k) for k in errors if k not in input_ids)
            if bad:
                self._problem(f"view_submission: errors keys are not input block_ids: {', '.join(bad)}")
            ov.errors = {str(k): str(v) for k, v in errors.items()}
            self._broadcast("view_errors", {"view_id": view_id, "errors": ov.errors})
        elif action == "clear":
            self._close_views(ov.user_id, list(self._stacks.get(ov.user_id, [])))
        else:
            errors_list = validate_view(answer.get("view"))
            if errors_list:
                self._problem(f"view_submission: invalid view in response_action {action}: {errors_list}")
                return
            try:
                if action == "update":
                    self._replace_view(ov, answer["view"])
                else:
                    self._open_stack(answer["view"], ov.user_id, push=True)
            except _ApiError as exc:
                self._problem(f"view_submission: response_action {action} failed: {exc.error}")

    async def close_view(self, view_id: str, *, user_id: str | None = None) -> SlackResponse | None:
        """Press the modal's close button; ``view_closed`` goes to the bot only with ``notify_on_close``."""
        ov = self._open_view(view_id)
        user = user_id or ov.user_id
        stack = self._stacks.get(ov.user_id, [])
        cleared = bool(ov.view.get("clear_on_close"))
        closing = list(stack) if cleared else [view_id]
        self._close_views(ov.user_id, closing)
        if not ov.view.get("notify_on_close"):
            return None
        payload = self._interaction_base("view_closed", user)
        payload.update({"view": copy.deepcopy(ov.view), "is_cleared": cleared})
        return await self._deliver_interaction(payload)

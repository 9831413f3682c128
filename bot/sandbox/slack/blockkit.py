"""Block Kit validation strict enough to catch the bot's mistakes before Slack does, in Slack's words."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import date
from typing import Any

from bot.sandbox.slack.records import Json

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100

_BUTTON_LIKE = {"button", "workflow_button"}
_SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
}
_INPUTS = {
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "rich_text_input",
    "file_input",
}
_PICKERS = {"datepicker", "timepicker", "datetimepicker", "checkboxes", "radio_buttons"}
_ACCESSORY = (
    _BUTTON_LIKE | _SELECTS | {"overflow", "image", "datepicker", "timepicker", "checkboxes", "radio_buttons"}
)
_ACTION_ELEMENTS = _BUTTON_LIKE | _SELECTS | _PICKERS | {"overflow", "plain_text_input", "rich_text_input"}
_INPUT_ELEMENTS = _SELECTS | _PICKERS | _INPUTS
_BLOCK_TYPES = {
    "section",
    "header",
    "context",
    "divider",
    "actions",
    "input",
    "image",
    "rich_text",
    "file",
    "video",
    "markdown",
}


class _Check:
    """Collects Slack-style validation errors: ``"<problem> [json-pointer:/blocks/0/text]"``."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, ptr: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{ptr}]")

    def present(self, value: Any, ptr: str, *, required: bool) -> bool:
        """Whether a field is there; a missing required one is an error."""
        if value is None and required:
            self.fail(ptr, "missing required field")
        return value is not None

    def string(self, value: Any, ptr: str, *, max_len: int, required: bool = False) -> None:
        if not self.present(value, ptr, required=required):
            return
        if not isinstance(value, str):
            self.fail(ptr, "must be a string")
        elif required and not value:
            self.fail(ptr, "must be more than 0 characters")
        elif len(value) > max_len:
            self.fail(ptr, f"must be less than {max_len + 1} characters")

    def text(self, obj: Any, ptr: str, *, max_len: int, plain: bool = False, required: bool = True) -> None:
        if not self.present(obj, ptr, required=required):
            return
        if not isinstance(obj, dict):
            self.fail(ptr, "must be a text object")
            return
        kind = obj.get("type")
        if kind not in {"plain_text", "mrkdwn"}:
            self.fail(f"{ptr}/type", "must be 'plain_text' or 'mrkdwn'")
            return
        if plain and kind != "plain_text":
            self.fail(f"{ptr}/type", "must be 'plain_text'")
        if kind == "mrkdwn" and "emoji" in obj:
            self.fail(f"{ptr}/emoji", "is only allowed on plain_text")
        self.string(obj.get("text"), f"{ptr}/text", max_len=max_len, required=True)

    def option(self, obj: Any, ptr: str, *, text_max: int = 75) -> None:
        if not isinstance(obj, dict):
            self.fail(ptr, "must be an option object")
            return
        self.text(obj.get("text"), f"{ptr}/text", max_len=text_max)
        self.string(obj.get("value"), f"{ptr}/value", max_len=150, required=True)
        self.text(obj.get("description"), f"{ptr}/description", max_len=75, plain=True, required=False)

    def options(self, value: Any, ptr: str, *, max_items: int, min_items: int = 1) -> list[Json]:
        if not isinstance(value, list):
            self.fail(ptr, "must be an array")
            return []
        if not min_items <= len(value) <= max_items:
            self.fail(ptr, f"must have between {min_items} and {max_items} items")
        for i, opt in enumerate(value):
            self.option(opt, f"{ptr}/{i}")
        return [o for o in value if isinstance(o, dict)]

    def confirm(self, obj: Any, ptr: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.fail(ptr, "must be a confirm object")
            return
        self.text(obj.get("title"), f"{ptr}/title", max_len=100, plain=True)
        self.text(obj.get("text"), f"{ptr}/text", max_len=300)
        self.text(obj.get("confirm"), f"{ptr}/confirm", max_len=30, plain=True)
        self.text(obj.get("deny"), f"{ptr}/deny", max_len=30, plain=True)
        if obj.get("style") not in {None, "primary", "danger"}:
            self.fail(f"{ptr}/style", "must be 'primary' or 'danger'")

    def element(self, el: Any, ptr: str, allowed: Collection[str], action_ids: set[str] | None) -> None:
        if not isinstance(el, dict):
            self.fail(ptr, "must be an element object")
            return
        kind = el.get("type")
        if kind not in allowed:
            self.fail(f"{ptr}/type", f"element type '{kind}' is not allowed here")
            return
        if kind == "image":
            self.string(
                el.get("image_url"), f"{ptr}/image_url", max_len=3000, required="slack_file" not in el
            )
            self.string(el.get("alt_text"), f"{ptr}/alt_text", max_len=2000, required=True)
            return
        action_id = el.get("action_id")
        self.string(action_id, f"{ptr}/action_id", max_len=255)
        if isinstance(action_id, str) and action_ids is not None:
            if action_id in action_ids:
                self.fail(f"{ptr}/action_id", f"duplicate action_id '{action_id}'")
            action_ids.add(action_id)
        self.confirm(el.get("confirm"), f"{ptr}/confirm")
        if "placeholder" in el:
            self.text(el.get("placeholder"), f"{ptr}/placeholder", max_len=150, plain=True)
        if kind in _BUTTON_LIKE:
            self.text(el.get("text"), f"{ptr}/text", max_len=75, plain=True)
            self.string(el.get("value"), f"{ptr}/value", max_len=2000)
            self.string(el.get("url"), f"{ptr}/url", max_len=3000)
            if el.get("style") not in {None, "primary", "danger"}:
                self.fail(f"{ptr}/style", "must be 'primary' or 'danger'")
        elif kind in {"static_select", "multi_static_select"}:
            if "option_groups" in el:
                groups = el["option_groups"] if isinstance(el["option_groups"], list) else []
                opts = [
                    o
                    for gi, g in enumerate(groups)
                    for o in self.options(
                        g.get("options"), f"{ptr}/option_groups/{gi}/options", max_items=100
                    )
                ]
            else:
                opts = self.options(el.get("options"), f"{ptr}/options", max_items=100)
            values = {o.get("value") for o in opts}
            initial = [el["initial_option"]] if "initial_option" in el else el.get("initial_options", [])
            for i, chosen in enumerate(initial if isinstance(initial, list) else []):
                if not isinstance(chosen, dict) or chosen.get("value") not in values:
                    self.fail(f"{ptr}/initial_option", f"initial option {i} must be one of the options")
        elif kind == "overflow":
            self.options(el.get("options"), f"{ptr}/options", max_items=5, min_items=1)
        elif kind in {"checkboxes", "radio_buttons"}:
            self.options(el.get("options"), f"{ptr}/options", max_items=10)
        elif kind == "plain_text_input":
            lo, hi = el.get("min_length"), el.get("max_length")
            for name, value in (("min_length", lo), ("max_length", hi)):
                if value is not None and (not isinstance(value, int) or not 0 <= value <= 3000):
                    self.fail(f"{ptr}/{name}", "must be an integer between 0 and 3000")
            if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                self.fail(f"{ptr}/min_length", "must not be more than max_length")
            self.string(el.get("initial_value"), f"{ptr}/initial_value", max_len=3000)
        elif kind == "datepicker" and el.get("initial_date") is not None:
            try:
                date.fromisoformat(str(el["initial_date"]))
            except ValueError:
                self.fail(f"{ptr}/initial_date", "must be a date as YYYY-MM-DD")
        elif kind == "timepicker" and el.get("initial_time") is not None:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(el["initial_time"])):
                self.fail(f"{ptr}/initial_time", "must be a time as HH:mm")
        elif kind == "datetimepicker" and el.get("initial_date_time") is not None:
            stamp = el["initial_date_time"]
            if not isinstance(stamp, int) or isinstance(stamp, bool):
                self.fail(f"{ptr}/initial_date_time", "must be an integer of unix seconds")

    def block(self, block: Any, ptr: str, *, surface: str, block_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.fail(ptr, "must be a block object")
            return
        kind = block.get("type")
        if kind not in _BLOCK_TYPES or (kind == "file" and surface != "message"):
            self.fail(f"{ptr}/type", f"unknown block type '{kind}'")
            return
        block_id = block.get("block_id")
        self.string(block_id, f"{ptr}/block_id", max_len=255)
        if isinstance(block_id, str):
            if block_id in block_ids:
                self.fail(f"{ptr}/block_id", f"duplicate block_id '{block_id}'")
            block_ids.add(block_id)
        if kind == "section":
            if block.get("text") is None and block.get("fields") is None:
                self.fail(ptr, "must provide either text or fields")
            self.text(block.get("text"), f"{ptr}/text", max_len=3000, required=False)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    self.fail(f"{ptr}/fields", "must be an array of 1 to 10 text objects")
                for i, f in enumerate(fields if isinstance(fields, list) else []):
                    self.text(f, f"{ptr}/fields/{i}", max_len=2000)
            if block.get("accessory") is not None:
                self.element(block["accessory"], f"{ptr}/accessory", _ACCESSORY, set())
        elif kind == "header":
            self.text(block.get("text"), f"{ptr}/text", max_len=150, plain=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                self.fail(f"{ptr}/elements", "must be an array of 1 to 10 elements")
                return
            for i, el in enumerate(elements):
                if isinstance(el, dict) and el.get("type") == "image":
                    self.element(el, f"{ptr}/elements/{i}", {"image"}, None)
                else:
                    self.text(el, f"{ptr}/elements/{i}", max_len=3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                self.fail(f"{ptr}/elements", "must be an array of 1 to 25 elements")
                return
            seen: set[str] = set()
            for i, el in enumerate(elements):
                self.element(el, f"{ptr}/elements/{i}", _ACTION_ELEMENTS, seen)
        elif kind == "input":
            self.text(block.get("label"), f"{ptr}/label", max_len=2000, plain=True)
            self.text(block.get("hint"), f"{ptr}/hint", max_len=2000, plain=True, required=False)
            if block.get("element") is None:
                self.fail(f"{ptr}/element", "missing required field")
            else:
                self.element(block["element"], f"{ptr}/element", _INPUT_ELEMENTS, set())
        elif kind == "image":
            self.string(
                block.get("image_url"), f"{ptr}/image_url", max_len=3000, required="slack_file" not in block
            )
            self.string(block.get("alt_text"), f"{ptr}/alt_text", max_len=2000, required=True)
            self.text(block.get("title"), f"{ptr}/title", max_len=2000, plain=True, required=False)
        elif kind == "markdown":
            self.string(block.get("text"), f"{ptr}/text", max_len=12_000, required=True)
        elif kind == "rich_text" and not isinstance(block.get("elements"), list):
            self.fail(f"{ptr}/elements", "must be an array")

    def blocks(self, blocks: Any, ptr: str, *, surface: str, max_blocks: int) -> None:
        if not isinstance(blocks, list):
            self.fail(ptr, "must be an array")
            return
        if len(blocks) > max_blocks:
            self.fail(ptr, f"no more than {max_blocks} items allowed")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{ptr}/{i}", surface=surface, block_ids=seen)


def validate_blocks(blocks: Any, *, surface: str = "message") -> list[str]:
    """Slack-style errors for a list of blocks (empty when Slack would accept them)."""
    check = _Check()
    limit = MAX_MESSAGE_BLOCKS if surface == "message" else MAX_VIEW_BLOCKS
    check.blocks(blocks, "/blocks", surface=surface, max_blocks=limit)
    return check.errors


def validate_view(view: Any) -> list[str]:
    """Slack-style errors for a modal view (empty when ``views.open`` would accept it)."""
    check = _Check()
    if not isinstance(view, dict):
        check.fail("/view", "must be a view object")
        return check.errors
    if view.get("type") not in {"modal", "home"}:
        check.fail("/view/type", "must be 'modal' or 'home'")
    if view.get("type") == "modal":
        check.text(view.get("title"), "/view/title", max_len=24, plain=True)
    check.text(view.get("submit"), "/view/submit", max_len=24, plain=True, required=False)
    check.text(view.get("close"), "/view/close", max_len=24, plain=True, required=False)
    check.blocks(view.get("blocks"), "/view/blocks", surface="modal", max_blocks=MAX_VIEW_BLOCKS)
    raw_blocks = view.get("blocks")
    blocks: list[Any] = raw_blocks if isinstance(raw_blocks, list) else []
    if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks) and not view.get("submit"):
        check.fail("/view/submit", "submit is required when an input block is present")
    check.string(view.get("callback_id"), "/view/callback_id", max_len=255)
    check.string(view.get("private_metadata"), "/view/private_metadata", max_len=3000)
    check.string(view.get("external_id"), "/view/external_id", max_len=255)
    return check.errors


def _iter_elements(blocks: Iterable[Json]) -> Iterable[tuple[Json, Json]]:
    """Every interactive element with the block holding it."""
    for block in blocks:
        if block.get("type") == "actions":
            for el in block.get("elements") or []:
                yield block, el
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]
        elif block.get("type") == "input" and isinstance(block.get("element"), dict):
            yield block, block["element"]


def _empty_state(element: Json) -> Json:
    kind = element.get("type", "")
    state: Json = {"type": kind}
    if kind in {"static_select", "external_select", "overflow", "radio_buttons"}:
        state["selected_option"] = element.get("initial_option")
    elif (kind.startswith("multi_") and kind.endswith("_select")) or kind == "checkboxes":
        state["selected_options"] = element.get("initial_options", [])
    elif kind == "users_select":
        state["selected_user"] = element.get("initial_user")
    elif kind in {"conversations_select", "channels_select"}:
        key = "selected_conversation" if kind == "conversations_select" else "selected_channel"
        state[key] = element.get(
            "initial_conversation" if kind == "conversations_select" else "initial_channel"
        )
    elif kind == "datepicker":
        state["selected_date"] = element.get("initial_date")
    elif kind == "timepicker":
        state["selected_time"] = element.get("initial_time")
    elif kind == "datetimepicker":
        state["selected_date_time"] = element.get("initial_date_time")
    else:
        state["value"] = element.get("initial_value")
    return state


def _is_empty(state: Json) -> bool:
    for key, value in state.items():
        if key != "type":
            return value in (None, "", [])
    return True

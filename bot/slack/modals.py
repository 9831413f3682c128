"""Modal forms for every `/twilio` subcommand, prefilled: pure, no I/O (`bot.slack.forms` reads them back).

Each input block's `block_id` is the field's name (`to`, `body`, `send_at`…) and its element's `action_id`
is always `value`, so a submitted value is `values[field]["value"]` and a field error is keyed by the
field's name, which is what `response_action: errors` wants. Secrets are never prefilled and never put in
`private_metadata`, button values or `repr()`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    DatePickerElement,
    DateTimePickerElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.core.commands import (
    CancelCommand,
    Command,
    DeleteCommand,
    FetchCommand,
    Incomplete,
    ListCommand,
    ScheduleCommand,
    SendCommand,
)
from bot.core.errors import InputError
from bot.core.rules import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_WINDOW,
    MAX_BODY,
    SendWindow,
    format_send_at,
    parse_date,
    parse_send_at,
)
from bot.slack.text import cut, safe

if TYPE_CHECKING:
    from bot.operations import StoredAccount

__all__ = [
    "ACTION_ID",
    "BODY_HINT",
    "CALLBACKS",
    "FIELDS",
    "NO_ACCOUNT",
    "PREFILL_KEYS",
    "SECRET_FIELDS",
    "SUBCOMMAND_OF",
    "ModalMetadata",
    "build_modal",
    "json_object",
    "ordered_accounts",
    "prefill_from_command",
]

CALLBACKS: dict[str, str] = {
    "send": "twilio_send",
    "schedule": "twilio_schedule",
    "list": "twilio_list",
    "fetch": "twilio_fetch",
    "cancel": "twilio_cancel",
    "delete": "twilio_delete",
    "setup": "twilio_setup",
}
SUBCOMMAND_OF: dict[str, str] = {callback: sub for sub, callback in CALLBACKS.items()}

ACTION_ID = "value"
FIELDS: tuple[str, ...] = (
    "account",
    "to",
    "from",
    "body",
    "media",
    "service",
    "send_at",
    "date",
    "limit",
    "scheduled",
    "sid",
    "label",
    "account_sid",
    "auth_token",
    "api_key_sid",
    "api_secret",
    "default_from",
    "default_service",
    "make_default",
)
SECRET_FIELDS = frozenset({"auth_token", "api_secret"})
# What a prefill (from a command, or an "Edit and try again" button) may carry: never a secret.
PREFILL_KEYS = frozenset(FIELDS) - SECRET_FIELDS

BODY_HINT = "160 GSM-7 characters per segment (70 with emoji or non-Latin characters); up to 1600."
_LIST_HINT = "Leave To, From and Date empty to include scheduled messages not yet sent."
_MAX_METADATA = 3000
_MAX_OPTIONS = 100
_TEXT_LIMITS = {
    "to": 100,
    "from": 100,
    "service": 100,
    "sid": 100,
    "limit": 10,
    "label": 40,
    "account_sid": 100,
    "auth_token": 200,
    "api_key_sid": 100,
    "api_secret": 200,
    "default_from": 100,
    "default_service": 100,
}
_CHANNEL_ID = re.compile(r"[A-Z0-9]{0,32}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,31}")
_URL = re.compile(r"https?://[^\s<>\"]{1,1990}")
NO_ACCOUNT = "No Twilio account is set up in this workspace yet; an admin can add one with /twilio setup."


# ---------------------------------------------------------------------------------------------------
# Values that travel with a modal


def json_object(raw: object, limit: int, *, missing: str, unreadable: str) -> dict[str, Any]:
    """The JSON object in a value the bot wrote for Slack to hand back (a button's value, a form's
    `private_metadata`): InputError(`missing`) when it is not text of 1 to `limit` characters,
    InputError(`unreadable`) when that text is not a JSON object."""
    if not isinstance(raw, str) or not raw or len(raw) > limit:
        raise InputError(missing)
    try:
        data = json.loads(raw)
    except ValueError:
        raise InputError(unreadable) from None
    if not isinstance(data, dict):
        raise InputError(unreadable)
    return data


@dataclass(frozen=True)
class ModalMetadata:
    """Where a modal's result goes; a submission carries no channel, so it rides in `private_metadata`.

    `channel_id` may be empty (a modal opened where there is no channel). Never carries a secret.
    Construction validates every field and raises InputError, so `to_json()` always fits 3000 characters.
    """

    channel_id: str
    response_url: str | None
    user_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.channel_id, str) or not _CHANNEL_ID.fullmatch(self.channel_id):
            raise InputError("The form's channel is not a Slack channel ID.", "channel")
        if not isinstance(self.user_id, str) or not _USER_ID.fullmatch(self.user_id):
            raise InputError("The form's user is not a Slack user ID.", "user")
        if self.response_url is not None and (
            not isinstance(self.response_url, str) or not _URL.fullmatch(self.response_url)
        ):
            raise InputError("The form's reply link is not a web address.", "response_url")

    def to_json(self) -> str:
        """Compact JSON for `private_metadata`."""
        data = {"channel_id": self.channel_id, "response_url": self.response_url, "user_id": self.user_id}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: object) -> ModalMetadata:
        """Read `private_metadata` back; InputError for anything `to_json` could not have written."""
        lost = "This form lost track of where it was opened; run the command again."
        data = json_object(raw, _MAX_METADATA, missing=lost, unreadable=lost)
        if set(data) != {"channel_id", "response_url", "user_id"}:
            raise InputError(lost)
        return cls(channel_id=data["channel_id"], response_url=data["response_url"], user_id=data["user_id"])


# ---------------------------------------------------------------------------------------------------
# Building the views


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=True)


def _text_input(
    block_id: str,
    label: str,
    *,
    initial: str | None = None,
    placeholder: str | None = None,
    hint: str | None = None,
    optional: bool = False,
    multiline: bool = False,
    max_length: int | None = None,
) -> InputBlock:
    limit = max_length or _TEXT_LIMITS.get(block_id, 3000)
    element = PlainTextInputElement(
        action_id=ACTION_ID,
        placeholder=_plain(placeholder) if placeholder else None,
        initial_value=cut(initial, limit) if initial else None,
        multiline=multiline or None,
        max_length=limit,
    )
    return InputBlock(
        block_id=block_id,
        label=_plain(label),
        element=element,
        hint=_plain(hint) if hint else None,
        optional=optional,
    )


def _checkbox(block_id: str, label: str, option: str, *, checked: bool) -> InputBlock:
    """An optional single checkbox whose submitted value is "yes" when ticked."""
    box = Option(value="yes", text=_plain(option))
    return InputBlock(
        block_id=block_id,
        label=_plain(label),
        element=CheckboxesElement(
            action_id=ACTION_ID, options=[box], initial_options=[box] if checked else None
        ),
        optional=True,
    )


def _note(text: str, block_id: str | None = None) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text, verbatim=True)], block_id=block_id)


def ordered_accounts(accounts: Sequence[StoredAccount]) -> list[StoredAccount]:
    """The default account first, then the rest in their given order."""
    return sorted(accounts, key=lambda a: not a.is_default)


def _chosen(
    accounts: Sequence[StoredAccount], prefill: Mapping[str, str]
) -> tuple[StoredAccount, str | None]:
    """The account the form starts with, and a warning when the prefilled label names none."""
    ordered = ordered_accounts(accounts)
    wanted = (prefill.get("account") or "").strip()
    if wanted:
        match = next((a for a in ordered if a.label.lower() == wanted.lower()), None)
        if match is not None:
            return match, None
        return ordered[
            0
        ], f"There is no account called {safe(wanted, 40)}; this form uses *{safe(ordered[0].label, 40)}*."
    return ordered[0], None


def _account_blocks(accounts: Sequence[StoredAccount], prefill: Mapping[str, str]) -> list[Block]:
    """A select when there is a choice to make; otherwise a line naming the only account."""
    start, warning = _chosen(accounts, prefill)
    blocks: list[Block] = []
    if len(accounts) > 1:
        options = [
            Option(value=a.label, text=_plain(cut(a.label + (" (default)" if a.is_default else ""), 75)))
            for a in ordered_accounts(accounts)[:_MAX_OPTIONS]
        ]
        initial = next((o for o in options if o.value == start.label), options[0])
        blocks.append(
            InputBlock(
                block_id="account",
                label=_plain("Twilio account"),
                element=StaticSelectElement(action_id=ACTION_ID, options=options, initial_option=initial),
            )
        )
    else:
        blocks.append(_note(f"Twilio account: *{safe(start.label, 40)}*", block_id="account_info"))
    if warning:
        blocks.append(_note(f"⚠️ {warning}"))
    return blocks


def _sole(accounts: Sequence[StoredAccount]) -> StoredAccount | None:
    return accounts[0] if len(accounts) == 1 else None


def _recipient_input(prefill: Mapping[str, str]) -> InputBlock:
    """The To field of the send and schedule forms."""
    return _text_input("to", "To", initial=prefill.get("to"), placeholder="+15551234567 or whatsapp:+1…")


def _body_input(prefill: Mapping[str, str]) -> InputBlock:
    """The message text field of the send and schedule forms."""
    return _text_input(
        "body",
        "Message",
        initial=prefill.get("body"),
        hint=BODY_HINT,
        multiline=True,
        max_length=MAX_BODY,
    )


def _send_blocks(accounts: Sequence[StoredAccount], prefill: Mapping[str, str]) -> list[Block]:
    sole = _sole(accounts)
    initial_from = prefill.get("from") or (sole.default_from if sole else None)
    from_hint = "Leave empty to use the account's default sender."
    if sole is not None and not sole.default_from and sole.default_service_sid:
        from_hint = "Leave empty to send through the account's default Messaging Service."
    return [
        *_account_blocks(accounts, prefill),
        _recipient_input(prefill),
        _text_input(
            "from",
            "From",
            initial=initial_from,
            placeholder="+15557654321",
            hint=from_hint,
            optional=True,
        ),
        _body_input(prefill),
        _text_input(
            "media",
            "Media URLs",
            initial=prefill.get("media"),
            placeholder="https://example.com/photo.jpg",
            hint="Pictures or files to send as MMS: public links, one a line, up to 10.",
            optional=True,
            multiline=True,
        ),
    ]


def _initial_send_at(raw: str | None, *, now: datetime, window: SendWindow) -> int | None:
    """The picker's starting point: the prefilled time if it reads as one, else an hour from now."""
    if not raw or not raw.strip():
        return int((now + timedelta(hours=1)).timestamp())
    try:
        return int(parse_send_at(raw, now=now, window=window).timestamp())
    except InputError:
        pass
    if raw.strip().lower().startswith("in"):
        return None  # a delay outside the window: let the user pick, rather than guess for them
    try:
        # An absolute time outside the window still shows as typed, so the form's error names it.
        anchor = datetime(1971, 1, 1, tzinfo=UTC)
        any_time = SendWindow(min_ahead=timedelta(0), max_ahead=timedelta(days=365 * 150))
        when = parse_send_at(raw, now=anchor, window=any_time)
    except (InputError, ValueError, OverflowError):
        return None
    stamp = int(when.timestamp())
    return stamp if 0 <= stamp <= 9_999_999_999 else None


def _schedule_blocks(
    accounts: Sequence[StoredAccount], prefill: Mapping[str, str], *, now: datetime, window: SendWindow
) -> list[Block]:
    sole = _sole(accounts)
    service = prefill.get("service") or (sole.default_service_sid if sole else None)
    return [
        *_account_blocks(accounts, prefill),
        _recipient_input(prefill),
        _body_input(prefill),
        InputBlock(
            block_id="send_at",
            label=_plain("Send at"),
            element=DateTimePickerElement(
                action_id=ACTION_ID,
                initial_date_time=_initial_send_at(prefill.get("send_at"), now=now, window=window),
            ),
            hint=_plain(f"{window.describe()} ahead, in your own time zone."),
        ),
        # Last: it is optional and usually prefilled, so the form's focus lands on To.
        _text_input(
            "service",
            "Messaging Service SID",
            initial=service,
            placeholder="MG0123456789abcdef0123456789abcdef",
            hint="Twilio schedules only through a Messaging Service. Leave empty for the account's default.",
            optional=True,
        ),
    ]


def _valid_date(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return parse_date(raw).isoformat()
    except InputError:
        return None


def _list_blocks(accounts: Sequence[StoredAccount], prefill: Mapping[str, str]) -> list[Block]:
    return [
        *_account_blocks(accounts, prefill),
        _note(_LIST_HINT),
        _text_input("to", "To", initial=prefill.get("to"), placeholder="+15551234567", optional=True),
        _text_input("from", "From", initial=prefill.get("from"), placeholder="+15557654321", optional=True),
        InputBlock(
            block_id="date",
            label=_plain("Date sent"),
            element=DatePickerElement(action_id=ACTION_ID, initial_date=_valid_date(prefill.get("date"))),
            optional=True,
        ),
        _text_input(
            "limit",
            "Page size",
            initial=prefill.get("limit") or str(DEFAULT_PAGE_SIZE),
            hint="How many messages to fetch at once, 1 to 1000.",
            optional=True,
        ),
        _checkbox(
            "scheduled",
            "Scheduled",
            "Only scheduled messages not yet sent",
            checked=prefill.get("scheduled") == "yes",
        ),
    ]


_SID_NOTES = {
    "fetch": None,
    "cancel": "Only a message that is still scheduled can be canceled; Twilio will then never send it.",
    "delete": "Deleting removes the message and its body from Twilio's logs. This cannot be undone.",
}


def _sid_blocks(sub: str, accounts: Sequence[StoredAccount], prefill: Mapping[str, str]) -> list[Block]:
    blocks = [
        *_account_blocks(accounts, prefill),
        _text_input(
            "sid", "Message SID", initial=prefill.get("sid"), placeholder="SM0123456789abcdef0123456789abcdef"
        ),
    ]
    note = _SID_NOTES.get(sub)
    if note:
        blocks.append(_note(note))
    return blocks


def _setup_blocks(accounts: Sequence[StoredAccount], prefill: Mapping[str, str]) -> list[Block]:
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text="Give the Auth Token, *or* an API Key SID with its secret (a key can be revoked "
                "on its own). "
                "Secrets are checked with Twilio, stored encrypted and never shown again.",
                verbatim=True,
            )
        ),
        _text_input(
            "label", "Label", initial=prefill.get("label") or "main", hint="Pick it with --account LABEL."
        ),
        _text_input(
            "account_sid",
            "Account SID",
            initial=prefill.get("account_sid"),
            placeholder="AC0123456789abcdef0123456789abcdef",
        ),
        _text_input(
            "auth_token",
            "Auth Token",
            optional=True,
            hint="With an API key below, optional: kept only to check Twilio's status callbacks.",
        ),
        _text_input(
            "api_key_sid", "API Key SID", initial=prefill.get("api_key_sid"), placeholder="SK…", optional=True
        ),
        _text_input("api_secret", "API Secret", optional=True),
        _text_input(
            "default_from",
            "Default From number",
            initial=prefill.get("default_from"),
            placeholder="+15557654321",
            optional=True,
        ),
        _text_input(
            "default_service",
            "Default Messaging Service SID",
            initial=prefill.get("default_service"),
            placeholder="MG… (needed to schedule)",
            optional=True,
        ),
        # The first account becomes the default anyway; say so by ticking the box.
        _checkbox(
            "make_default", "Default", "Make this the workspace's default account", checked=not accounts
        ),
    ]


_TITLES = {
    "send": ("Send a message", "Send"),
    "schedule": ("Schedule a message", "Schedule"),
    "list": ("List messages", "List"),
    "fetch": ("Look up a message", "Fetch"),
    "cancel": ("Cancel a message", "Cancel message"),
    "delete": ("Delete a message", "Delete"),
    "setup": ("Twilio account", "Save"),
}


def build_modal(
    subcommand: str,
    *,
    accounts: Sequence[StoredAccount],
    prefill: Mapping[str, str],
    metadata: ModalMetadata,
    now: datetime,
    window: SendWindow = DEFAULT_WINDOW,
    problem: str | None = None,
) -> dict[str, Any]:
    """The `views.open` view for `subcommand`, prefilled (secrets never are); ValueError for other names.

    Without any account, a Twilio form is a short explanation with only a Close button. `problem` (from
    `Incomplete.problem`) is shown on top, escaped.
    """
    if subcommand not in CALLBACKS:
        raise ValueError(f"no form for {subcommand!r}")
    prefill = {k: v for k, v in prefill.items() if k in PREFILL_KEYS and isinstance(v, str)}
    title, submit = _TITLES[subcommand]
    blocks: list[Block] = []
    if problem:
        blocks.append(_note(f"⚠️ {safe(problem, 1000)}"))
    if subcommand != "setup" and not accounts:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=NO_ACCOUNT, verbatim=True)))
        view = View(
            type="modal",
            callback_id=CALLBACKS[subcommand],
            title=_plain(title),
            close=_plain("Close"),
            private_metadata=metadata.to_json(),
            blocks=blocks,
        )
        return view.to_dict()
    if subcommand == "send":
        blocks += _send_blocks(accounts, prefill)
    elif subcommand == "schedule":
        blocks += _schedule_blocks(accounts, prefill, now=now, window=window)
    elif subcommand == "list":
        blocks += _list_blocks(accounts, prefill)
    elif subcommand == "setup":
        blocks += _setup_blocks(accounts, prefill)
    else:
        blocks += _sid_blocks(subcommand, accounts, prefill)
    view = View(
        type="modal",
        callback_id=CALLBACKS[subcommand],
        title=_plain(title),
        submit=_plain(submit),
        close=_plain("Close"),
        private_metadata=metadata.to_json(),
        blocks=blocks,
    )
    return view.to_dict()


# ---------------------------------------------------------------------------------------------------
# From a command back to a form


def prefill_from_command(cmd: Command) -> dict[str, str]:
    """A command as modal prefill, for "Edit and try again": every field the form has, never a secret."""
    out: dict[str, str] = {}
    if isinstance(cmd, SendCommand):
        out = {"to": str(cmd.to), "body": cmd.body}
        if cmd.from_ is not None:
            out["from"] = str(cmd.from_)
        if cmd.media:
            out["media"] = "\n".join(cmd.media)
    elif isinstance(cmd, ScheduleCommand):
        out = {"to": str(cmd.to), "body": cmd.body, "send_at": format_send_at(cmd.send_at)}
        if cmd.service:
            out["service"] = cmd.service
    elif isinstance(cmd, ListCommand):
        out = {"limit": str(cmd.limit)}
        if cmd.to is not None:
            out["to"] = str(cmd.to)
        if cmd.from_ is not None:
            out["from"] = str(cmd.from_)
        if cmd.date_sent is not None:
            out["date"] = cmd.date_sent.isoformat()
        if cmd.scheduled_only:
            out["scheduled"] = "yes"
    elif isinstance(cmd, FetchCommand | CancelCommand | DeleteCommand):
        out = {"sid": cmd.sid}
    elif isinstance(cmd, Incomplete):
        return {k: v for k, v in cmd.prefill.items() if k in PREFILL_KEYS and isinstance(v, str)}
    account = getattr(cmd, "account", None)
    if isinstance(account, str) and account:
        out["account"] = account
    return out

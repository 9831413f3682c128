"""Reading submitted forms back into requests: every field error at once, keyed by its input's block_id."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bot.core.commands import (
    CancelCommand,
    Command,
    DeleteCommand,
    FetchCommand,
    ListCommand,
    ScheduleCommand,
    SendCommand,
)
from bot.core.errors import InputError
from bot.core.phone import PhoneNumber, parse_phone
from bot.core.rules import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_WINDOW,
    SendWindow,
    SidKind,
    check_account_label,
    check_body,
    check_media_urls,
    check_send_at,
    check_sid,
    parse_date,
    parse_page_size,
    schedule_service,
    scheduled_list_problems,
    sender_for,
    sender_or_service,
)
from bot.slack.modals import ACTION_ID, NO_ACCOUNT, SUBCOMMAND_OF, ordered_accounts
from bot.slack.text import cut, safe
from bot.workspace import AccountSetup

if TYPE_CHECKING:
    from bot.operations import StoredAccount

__all__ = ["FieldErrors", "parse_submission"]

_MAX_ERROR = 300
_T = TypeVar("_T")
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_\-.]{16,128}")


class FieldErrors(Exception):
    """Every invalid field of a submission at once: input block_id → one sentence."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = {k: cut(v, _MAX_ERROR) for k, v in errors.items()}
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


def _action(values: Mapping[str, Any], block_id: str) -> Mapping[str, Any] | None:
    """The submitted state of one input: `values[block_id]["value"]`, or its only action."""
    block = values.get(block_id)
    if not isinstance(block, Mapping):
        return None
    action = block.get(ACTION_ID)
    if action is None and len(block) == 1:
        action = next(iter(block.values()))
    return action if isinstance(action, Mapping) else None


def _text(values: Mapping[str, Any], block_id: str) -> str | None:
    action = _action(values, block_id)
    value = action.get("value") if action is not None else None
    return value if isinstance(value, str) and value.strip() else None


def _selected(values: Mapping[str, Any], block_id: str) -> str | None:
    action = _action(values, block_id)
    option = action.get("selected_option") if action is not None else None
    value = option.get("value") if isinstance(option, Mapping) else None
    return value if isinstance(value, str) and value else None


def _checked(values: Mapping[str, Any], block_id: str) -> bool:
    action = _action(values, block_id)
    options = action.get("selected_options") if action is not None else None
    if not isinstance(options, list):
        return False
    return any(isinstance(o, Mapping) and o.get("value") == "yes" for o in options)


def _picked_date(values: Mapping[str, Any], block_id: str) -> str | None:
    action = _action(values, block_id)
    value = action.get("selected_date") if action is not None else None
    return value if isinstance(value, str) and value else None


def _picked_time(values: Mapping[str, Any], block_id: str) -> int | None:
    action = _action(values, block_id)
    value = action.get("selected_date_time") if action is not None else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 12:
        return int(value.strip())
    return value if isinstance(value, int) else None


class _Form:
    """Collects every field error of one submission."""

    def __init__(self, values: Mapping[str, Any], first: str) -> None:
        self.values = values
        self.first = first
        self.errors: dict[str, str] = {}

    def fail(self, block_id: str, message: str) -> None:
        self.errors.setdefault(block_id, message)

    def required(self, block_id: str, missing: str) -> str | None:
        value = _text(self.values, block_id)
        if value is None:
            self.fail(block_id, missing)
        return value

    def check(self, block_id: str, rule: Callable[[], _T]) -> _T | None:
        """The rule's answer, or None with its sentence shown under `block_id`."""
        try:
            return rule()
        except InputError as err:
            self.fail(block_id, err.message)
            return None

    def phone(self, block_id: str, raw: str | None, region: str, field: str) -> PhoneNumber | None:
        if raw is None:
            return None
        return self.check(block_id, lambda: parse_phone(raw, default_region=region, field=field))

    def sid(self, block_id: str, raw: str | None, kind: SidKind) -> str | None:
        if raw is None:
            return None
        return self.check(block_id, lambda: check_sid(raw, kind, field=block_id))

    def account(self, accounts: Sequence[StoredAccount]) -> StoredAccount | None:
        chosen = _selected(self.values, "account")
        if chosen is not None:
            match = next((a for a in accounts if a.label == chosen), None)
            if match is None:
                self.fail("account", f"The account {safe(chosen, 40)} no longer exists; choose another.")
            return match
        if not accounts:
            self.fail(self.first, NO_ACCOUNT)
            return None
        if "account" in self.values and len(accounts) > 1:
            self.fail("account", "Choose a Twilio account.")
            return None
        # The form showed no choice: it named the only (or default) account.
        return ordered_accounts(accounts)[0]

    def body(self) -> str | None:
        body = self.required("body", "Type the message to send.")
        if body is None or self.check("body", lambda: check_body(body)) is None:
            return None
        return body


def _same_channel(form: _Form, to: PhoneNumber | None, from_: PhoneNumber | None) -> PhoneNumber | None:
    """The sender on the recipient's channel (the WhatsApp rule), or an error on To."""
    if to is None:
        return from_
    return form.check("to", lambda: sender_for(to, from_)) or from_


def _parse_send(form: _Form, accounts: Sequence[StoredAccount], region: str) -> SendCommand | None:
    account = form.account(accounts)
    to = form.phone("to", form.required("to", "Enter the number to send to."), region, "to")
    from_ = form.phone("from", _text(form.values, "from"), region, "from")
    body = form.body()
    from_ = _same_channel(form, to, from_)
    if account is not None and "from" not in form.errors:
        sender = str(from_) if from_ else None
        form.check(
            "from",
            lambda: sender_or_service(
                account.label,
                sender=sender,
                default_from=account.default_from,
                default_service=account.default_service_sid,
            ),
        )
    raw_media = _text(form.values, "media") or ""
    media = form.check("media", lambda: check_media_urls(raw_media.split()))
    if form.errors or account is None or to is None or body is None or media is None:
        return None
    return SendCommand(to=to, body=body, from_=from_, account=account.label, media=media)


def _parse_schedule(
    form: _Form, accounts: Sequence[StoredAccount], region: str, now: datetime, window: SendWindow
) -> ScheduleCommand | None:
    account = form.account(accounts)
    service = form.sid("service", _text(form.values, "service"), "service")
    to = form.phone("to", form.required("to", "Enter the number to send to."), region, "to")
    body = form.body()
    send_at: datetime | None = None
    stamp = _picked_time(form.values, "send_at")
    if stamp is None:
        form.fail("send_at", "Pick the date and time to send at.")
    else:
        try:
            send_at = datetime.fromtimestamp(stamp, UTC)
            check_send_at(send_at, now=now, window=window)
        except InputError as err:
            form.fail("send_at", err.message)
        except (ValueError, OverflowError, OSError):
            form.fail("send_at", "That is not a date and time; pick one with the picker.")
    if account is not None and "service" not in form.errors:
        default = account.default_service_sid
        form.check(
            "service", lambda: schedule_service(account.label, service=service, default_service=default)
        )
    if form.errors or account is None or to is None or body is None or send_at is None:
        return None
    return ScheduleCommand(to=to, send_at=send_at, body=body, service=service, account=account.label)


def _parse_list(form: _Form, accounts: Sequence[StoredAccount], region: str) -> ListCommand | None:
    account = form.account(accounts)
    to = form.phone("to", _text(form.values, "to"), region, "to")
    from_ = form.phone("from", _text(form.values, "from"), region, "from")
    raw_date = _picked_date(form.values, "date")
    day = form.check("date", lambda: parse_date(raw_date)) if raw_date is not None else None
    raw_limit = _text(form.values, "limit")
    limit = form.check("limit", lambda: parse_page_size(raw_limit)) if raw_limit is not None else None
    scheduled = _checked(form.values, "scheduled")
    if scheduled:
        given = scheduled_list_problems(
            to=_text(form.values, "to") is not None,
            from_=_text(form.values, "from") is not None,
            date=raw_date is not None,
        )
        for problem in given:
            form.fail(problem.field or form.first, problem.message)
    if form.errors or account is None:
        return None
    return ListCommand(
        to=to,
        from_=from_,
        date_sent=day,
        limit=limit or DEFAULT_PAGE_SIZE,
        account=account.label,
        scheduled_only=scheduled,
    )


def _parse_by_sid(
    sub: str, form: _Form, accounts: Sequence[StoredAccount]
) -> FetchCommand | CancelCommand | DeleteCommand | None:
    account = form.account(accounts)
    sid = form.sid("sid", form.required("sid", "Enter the message SID (SM…)."), "message")
    if form.errors or account is None or sid is None:
        return None
    build = next(c for c in (FetchCommand, CancelCommand, DeleteCommand) if c.subcommand == sub)
    return build(sid=sid, account=account.label)


def _parse_setup(form: _Form, region: str) -> AccountSetup | None:
    raw_label = form.required("label", "Give the account a label, like main.")
    label = form.check("label", lambda: check_account_label(raw_label)) if raw_label is not None else None
    account_sid = form.sid(
        "account_sid", form.required("account_sid", "Enter the Account SID (AC…)."), "account"
    )
    token = _text(form.values, "auth_token")
    key_raw = _text(form.values, "api_key_sid")
    key_secret = _text(form.values, "api_secret")
    secret: str | None = None
    api_key_sid: str | None = None
    webhook_token: str | None = None
    if token is not None and not _SECRET_SHAPE.fullmatch(token.strip()):
        form.fail(
            "auth_token",
            "That does not look like an Auth Token: paste the 32 characters from Twilio's console.",
        )
    elif token is not None and key_raw is None and key_secret is None:
        secret = token.strip()
    if key_raw is not None or key_secret is not None:
        # With an API key, the Auth Token is optional and kept only to check Twilio's webhook signatures.
        webhook_token = token.strip() if token is not None else None
        api_key_sid = form.sid("api_key_sid", key_raw, "api_key")
        if key_raw is None:
            form.fail("api_key_sid", "Enter the API Key SID (SK…) that goes with this secret.")
        if key_secret is None:
            form.fail("api_secret", "Enter the API Secret that goes with this key.")
        else:
            secret = key_secret.strip()
            if not _SECRET_SHAPE.fullmatch(secret):
                form.fail(
                    "api_secret", "That does not look like an API Secret: paste it as Twilio showed it."
                )
    elif token is None:
        form.fail("auth_token", "Enter the Auth Token, or an API Key SID and its secret below.")
    default_from = form.phone("default_from", _text(form.values, "default_from"), region, "from")
    default_service = form.sid("default_service", _text(form.values, "default_service"), "service")
    if form.errors or label is None or account_sid is None or secret is None:
        return None
    return AccountSetup(
        label=label,
        account_sid=account_sid,
        secret=secret,
        api_key_sid=api_key_sid,
        default_from=str(default_from) if default_from is not None else None,
        default_service_sid=default_service,
        make_default=_checked(form.values, "make_default"),
        webhook_token=webhook_token,
    )


_FIRST_INPUT = {
    "send": "to",
    "schedule": "to",
    "list": "limit",
    "fetch": "sid",
    "cancel": "sid",
    "delete": "sid",
    "setup": "label",
}


def parse_submission(
    callback_id: str,
    values: Mapping[str, Any],
    *,
    accounts: Sequence[StoredAccount],
    now: datetime,
    default_region: str = "US",
    window: SendWindow = DEFAULT_WINDOW,
) -> Command | AccountSetup:
    """Turn a submitted form (`view["state"]["values"]`) into a command, or raise FieldErrors.

    Every invalid field is reported at once, keyed by its input's block_id. Missing blocks, wrong types
    and None become field errors or defaults, never another exception. The account is always named in
    the result: the form showed which one it would use. ValueError only for a callback_id we never built.
    """
    sub = SUBCOMMAND_OF.get(callback_id)
    if sub is None:
        raise ValueError(f"no form with callback_id {callback_id!r}")
    form = _Form(values if isinstance(values, Mapping) else {}, _FIRST_INPUT[sub])
    result: Command | AccountSetup | None
    if sub == "send":
        result = _parse_send(form, accounts, default_region)
    elif sub == "schedule":
        result = _parse_schedule(form, accounts, default_region, now, window)
    elif sub == "list":
        result = _parse_list(form, accounts, default_region)
    elif sub == "setup":
        result = _parse_setup(form, default_region)
    else:
        result = _parse_by_sid(sub, form, accounts)
    if form.errors or result is None:
        raise FieldErrors(
            form.errors or {form.first: "Something in this form is not right; check it and submit again."}
        )
    return result

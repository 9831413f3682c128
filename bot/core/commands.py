"""The `/twilio` text grammar: command text → a typed request, an Incomplete, or a CommandError.

    /twilio help [COMMAND]
    /twilio setup · /twilio accounts
    /twilio send TO BODY… [--from FROM] [--account LABEL]
    /twilio schedule TO WHEN BODY… [--service MG…] [--account LABEL]
    /twilio list [scheduled] [--to TO] [--from FROM] [--date YYYY-MM-DD] [--limit N] [--account LABEL]
    /twilio fetch|cancel|delete SID [--account LABEL]
    /twilio history [N] · /twilio log-channel #channel | off
    /twilio route NUMBER #channel [--account LABEL] · /twilio routes · /twilio unroute NUMBER

Each request class knows its subcommand's name (`SendCommand.subcommand == "send"`). The words are
read by `bot.core.words`; every value is checked by the one rule for it in `bot.core.rules`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.core.errors import CommandError, InputError, quoted
from bot.core.phone import PhoneNumber, parse_phone, rank_phone
from bot.core.requests import (
    DEFAULT_HISTORY,
    MAX_HISTORY,
    AccountsCommand,
    CancelCommand,
    Command,
    DeleteCommand,
    FetchCommand,
    HelpCommand,
    HistoryCommand,
    Incomplete,
    ListCommand,
    LogChannelCommand,
    RouteCommand,
    RoutesCommand,
    ScheduleCommand,
    SendCommand,
    SetupCommand,
    TwilioCommand,
    UnrouteCommand,
)
from bot.core.rules import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_WINDOW,
    DELAY_PATTERN,
    SendWindow,
    check_account_label,
    check_body,
    check_media_urls,
    check_sid,
    parse_count,
    parse_date,
    parse_page_size,
    parse_send_at,
    scheduled_list_problems,
    sender_for,
)
from bot.core.words import FLAG, Token, tokenize, unescape, unwrap

__all__ = [
    "DEFAULT_HISTORY",
    "DESCRIPTIONS",
    "MAX_HISTORY",
    "SUBCOMMANDS",
    "USAGE",
    "AccountsCommand",
    "CancelCommand",
    "Command",
    "CommandError",
    "DeleteCommand",
    "FetchCommand",
    "HelpCommand",
    "HistoryCommand",
    "Incomplete",
    "ListCommand",
    "LogChannelCommand",
    "RouteCommand",
    "RoutesCommand",
    "ScheduleCommand",
    "SendCommand",
    "SetupCommand",
    "TwilioCommand",
    "UnrouteCommand",
    "parse_command",
]


SUBCOMMANDS: tuple[str, ...] = (
    "help",
    "setup",
    "accounts",
    "send",
    "schedule",
    "list",
    "fetch",
    "cancel",
    "delete",
    "history",
    "log-channel",
    "route",
    "routes",
    "unroute",
)

USAGE: dict[str, str] = {
    "help": "/twilio help [COMMAND]",
    "setup": "/twilio setup",
    "accounts": "/twilio accounts",
    "send": "/twilio send TO BODY… [--from FROM] [--account LABEL] [--media URL]…",
    "schedule": "/twilio schedule TO WHEN BODY… [--service MG…] [--account LABEL] [--media URL]…",
    "list": (
        "/twilio list [scheduled] [--to TO] [--from FROM] [--date YYYY-MM-DD] [--limit N] [--account LABEL]"
    ),
    "fetch": "/twilio fetch SID [--account LABEL]",
    "cancel": "/twilio cancel SID [--account LABEL]",
    "delete": "/twilio delete SID [--account LABEL]",
    "history": "/twilio history [N]",
    "log-channel": "/twilio log-channel #channel | off",
    "route": "/twilio route NUMBER #channel [--account LABEL]",
    "routes": "/twilio routes",
    "unroute": "/twilio unroute NUMBER",
}

DESCRIPTIONS: dict[str, str] = {
    "help": "Show every command, or the details of one.",
    "setup": "Add or replace a Twilio account for this workspace (admins only).",
    "accounts": "List this workspace's Twilio accounts.",
    "send": "Send an SMS or WhatsApp message now.",
    "schedule": f"Schedule a message {DEFAULT_WINDOW.describe()} ahead through a Messaging Service.",
    "list": "List recent messages, filtered by number or date; list scheduled shows those not yet sent.",
    "fetch": "Show one message and its delivery status.",
    "cancel": "Cancel a scheduled message before it is sent.",
    "delete": "Delete a message's record from Twilio.",
    "history": f"Show the last N commands run here (default {DEFAULT_HISTORY}, at most {MAX_HISTORY}).",
    "log-channel": "Copy every result to a channel, or stop with off (admins only).",
    "route": "Open a thread in #channel for each person who texts our NUMBER; replies there go back as SMS "
    "(admins only).",
    "routes": "List which of our numbers open threads in which channels.",
    "unroute": "Stop opening threads for texts to NUMBER (admins only).",
}

_ALIASES = {
    "--help": "help",
    "-h": "help",
    "?": "help",
    "log_channel": "log-channel",
    "logchannel": "log-channel",
}


# --- parsing --------------------------------------------------------------------------------------


def parse_command(
    text: str,
    *,
    now: datetime,
    default_region: str = "US",
    window: SendWindow = DEFAULT_WINDOW,
) -> Command:
    """Parse the text after `/twilio` into a request, an Incomplete, or raise CommandError.

    Empty text and unknown subcommands give HelpCommand (topic = the unknown word, lower-cased),
    so the caller can answer "Unknown subcommand" with the help. `now` anchors `in 2h` and the
    schedule window; it must be timezone-aware.
    """
    first = text.split(None, 1)
    word = first[0].lower() if first else ""
    word = _ALIASES.get(word, word)
    # log-channel and route need the channel ID inside <#C…|name>; elsewhere mentions become plain text.
    clean = unescape(unwrap(text, mentions=word not in _CHANNEL_SUBS))
    tokens = tokenize(clean)
    if not tokens:
        return HelpCommand(None)
    word = _ALIASES.get(tokens[0].value.lower(), tokens[0].value.lower())
    if word == "help":
        topic = tokens[1].value.lower() if len(tokens) > 1 else None
        return HelpCommand(_ALIASES.get(topic, topic) if topic is not None else None)
    parser = _PARSERS.get(word)
    if parser is None:
        return HelpCommand(word)
    rest = tokens[1:]
    if any(not tok.quoted and tok.value.lower() in {"--help", "-h"} for tok in rest):
        return HelpCommand(word)
    ctx = _Context(word, clean, rest, now, default_region, window)
    try:
        return parser(ctx)
    except CommandError:
        raise
    except InputError as err:
        raise CommandError(err.message, USAGE[word], err.field) from None


# --- flags ----------------------------------------------------------------------------------------

_CHANNEL_SUBS = frozenset({"log-channel", "route"})
_FLAG_NAMES = frozenset({"to", "from", "date", "limit", "account", "service", "media"})
# Flags that may be given more than once (each value kept, in order).
_REPEATABLE = frozenset({"media"})
_PHONE_FLAGS = frozenset({"to", "from"})


@dataclass
class _Args:
    """Positional tokens and raw flag values of one command, plus the spans the flags covered."""

    positionals: list[tuple[int, Token]]  # (index in the token list, token)
    flags: dict[str, str]
    flag_spans: list[tuple[int, int]]
    repeated: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Context:
    """Everything one parse needs, and the helpers the subcommand parsers share."""

    sub: str
    text: str
    tokens: list[Token]
    now: datetime
    region: str
    window: SendWindow

    def fail(self, message: str, field: str | None = None) -> CommandError:
        """A CommandError carrying this subcommand's usage line."""
        return CommandError(message, USAGE[self.sub], field)

    def split(self, allowed: Sequence[str]) -> _Args:
        """Separate flags (anywhere after the subcommand) from positional tokens."""
        tokens = self.tokens
        args = _Args([], {}, [])
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            flag = self._flag_name(tok)
            if flag is None:
                args.positionals.append((i, tok))
                i += 1
                continue
            name, inline = flag
            shown = f"--{name}"
            if name not in allowed:
                raise self.fail(self._unknown_flag(shown, allowed))
            if name in args.flags and name not in _REPEATABLE:
                raise self.fail(f"{shown} is given twice; give it once.", name)
            if inline is not None:
                value, last = inline, i
            else:
                nxt = i + 1
                if nxt >= len(tokens) or self._flag_name(tokens[nxt]) is not None:
                    raise self.fail(f"{shown} needs a value, like {_FLAG_EXAMPLES[name]}.", name)
                count = self.phone_tokens(tokens[nxt:], name) if name in _PHONE_FLAGS else 1
                last = nxt + count - 1
                value = self.join(tokens[nxt : last + 1])
            if not value.strip():
                raise self.fail(f"{shown} needs a value, like {_FLAG_EXAMPLES[name]}.", name)
            args.flags[name] = value
            args.repeated.setdefault(name, []).append(value)
            # Remove the flag up to the next word, so "hi --from X there" leaves "hi there".
            stop = tokens[last + 1].start if last + 1 < len(tokens) else len(self.text)
            args.flag_spans.append((tok.start, stop))
            i = last + 1
        return args

    def _flag_name(self, tok: Token) -> tuple[str, str | None] | None:
        """(name, inline value or None) when the token is a flag, else None."""
        if tok.quoted:
            return None
        head, eq, tail = tok.value.partition("=")
        match = FLAG.fullmatch(head)
        if match is None:
            return None
        dash, name = match.group(1), match.group(2).lower()
        # A dash stands in for "--" only before a real flag name: "—see you" is body text.
        if dash != "--" and name not in _FLAG_NAMES:
            return None
        return name, (tail if eq else None)

    def _unknown_flag(self, shown: str, allowed: Sequence[str]) -> str:
        """Sentence for a flag this subcommand does not take."""
        cmd = f"/twilio {self.sub}"
        if not allowed:
            return f"{cmd} takes no options like {shown}."
        names = " and ".join(", ".join(f"--{a}" for a in allowed).rsplit(", ", 1))
        hint = " (put the message in quotes to send text with --)" if self.sub in _BODY_SUBS else ""
        return f"Unknown option {shown}; {cmd} takes {names}{hint}."

    def join(self, tokens: Sequence[Token]) -> str:
        """The text a run of tokens covers: one token's value, or the original slice for several."""
        if len(tokens) == 1:
            return tokens[0].value
        return self.text[tokens[0].start : tokens[-1].end]

    def phone_tokens(self, tokens: Sequence[Token], field: str) -> int:
        """How many leading tokens form one phone number typed with spaces ("+1 555 123 4567").

        Among the prefixes of the run of number-looking words, the reading that ranks best wins
        (valid > possible > possible only locally, see rank_phone): "+1 555 123 4567 2 for 1" is
        read as +15551234567 because the longer readings are impossible. A tie is ambiguous (the
        body may start with digits, and some countries allow many lengths), so we ask rather than
        guess who receives the message.
        """
        first = tokens[0]
        if first.quoted:
            return 1
        bare_prefix = first.value.lower() in {"whatsapp:", "tel:"}
        if not bare_prefix and _PHONE_FIRST.fullmatch(first.value) is None:
            return 1
        run = 1
        while run < min(len(tokens), _MAX_PHONE_WORDS):
            tok = tokens[run]
            pattern = _PHONE_FIRST if bare_prefix and run == 1 else _PHONE_NEXT
            if tok.quoted or pattern.fullmatch(tok.value) is None:
                break
            run += 1
        if run == 1:
            return 1
        shortest = 2 if bare_prefix else 1
        ranks = {
            k: rank_phone(self.join(tokens[:k]), default_region=self.region) for k in range(shortest, run + 1)
        }
        best = max(ranks.values())
        if best < 0:
            return shortest
        fits = [k for k, rank in ranks.items() if rank == best]
        if len(fits) > 1:
            a, b = self.join(tokens[: fits[0]]), self.join(tokens[: fits[-1]])
            raise InputError(
                f"The number is unclear: {quoted(a)} and {quoted(b)} could both be phone numbers; "
                "write it without spaces, like +15551234567, or put it in quotes.",
                field,
            )
        return fits[0]

    def phone(self, raw: str, field: str) -> PhoneNumber:
        """parse_phone with this command's region."""
        return parse_phone(raw, default_region=self.region, field=field)

    def body(self, args: _Args, first: int) -> str:
        """The message body: original text from positional token `first` on, with flags cut out."""
        body_tokens = [tok for idx, tok in args.positionals if idx >= first]
        if len(body_tokens) == 1 and body_tokens[0].quoted:
            return body_tokens[0].value
        start = self.tokens[first].start
        pieces: list[str] = []
        cursor = start
        for span_start, span_stop in sorted(args.flag_spans):
            if span_stop <= start:
                continue
            pieces.append(self.text[cursor : max(cursor, span_start)])
            cursor = max(cursor, span_stop)
        pieces.append(self.text[cursor:])
        return "".join(pieces).strip()

    def no_positionals(self, args: _Args, after: int = 0) -> None:
        """Refuse words the subcommand does not take."""
        extra = args.positionals[after:]
        if extra:
            raise self.fail(f"Unexpected {quoted(extra[0][1].value)}; use {USAGE[self.sub]}.")

    def account(self, args: _Args) -> str | None:
        """The --account label, checked."""
        raw = args.flags.get("account")
        return None if raw is None else check_account_label(raw)


_BODY_SUBS = frozenset({"send", "schedule"})


def _media(args: _Args) -> tuple[str, ...]:
    """The --media links, checked."""
    return check_media_urls(args.repeated.get("media", []))


_FLAG_EXAMPLES = {"to": "--to +15551234567", "from": "--from +15551234567", "date": "--date 2026-12-01",
                  "limit": "--limit 50", "account": "--account main",
                  "service": "--service MG0123456789abcdef0123456789abcdef",
                  "media": "--media https://example.com/photo.jpg"}  # fmt: skip
_MAX_PHONE_WORDS = 6
_PHONE_FIRST = re.compile(r"(?:whatsapp:|tel:)?[+＋]?[0-9()\-.]*[0-9][0-9()\-.]*", re.ASCII | re.IGNORECASE)
_PHONE_NEXT = re.compile(r"\(?[0-9][0-9()\-.]*", re.ASCII)


def _next_word(text: str, pos: int) -> int:
    """Index of the first non-space character at or after pos."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _problem(checks: Sequence[Callable[[], object]]) -> str | None:
    """The first InputError sentence among the checks, or None when all pass."""
    for check in checks:
        try:
            check()
        except InputError as err:
            return err.message
    return None


# --- subcommands ----------------------------------------------------------------------------------


def _bare_parser(
    build: type[SetupCommand | AccountsCommand | RoutesCommand],
) -> Callable[[_Context], Command]:
    """Parser for the subcommands that take no arguments: setup, accounts, routes."""

    def parse(ctx: _Context) -> Command:
        args = ctx.split(())
        ctx.no_positionals(args)
        return build()

    return parse


@dataclass(frozen=True)
class _Opening:
    """What send and schedule read first: their flags, the recipient's words, what to prefill and check."""

    args: _Args
    prefill: dict[str, str]
    # The values given so far, checked in order for the first problem a prefilled modal shows.
    checks: list[Callable[[], object]]
    to_raw: str
    to_count: int  # how many positional tokens make up the recipient


def _opening(ctx: _Context, flag: str, check: Callable[[str], object]) -> _Opening | Incomplete:
    """Read send's or schedule's flags (its own `flag`, checked by `check`) and the recipient's words.

    With no positional words at all, the Incomplete that opens the modal.
    """
    args = ctx.split((flag, "account", "media"))
    prefill = {k: v for k, v in args.flags.items() if k != "media"}
    checks: list[Callable[[], object]] = []
    if flag in args.flags:
        checks.append(lambda: check(args.flags[flag]))
    checks.append(lambda: ctx.account(args))
    if not args.positionals:
        return Incomplete(ctx.sub, prefill, _problem(checks))
    to_count = _positional_phone(ctx, args, "to")
    to_raw = ctx.join([tok for _, tok in args.positionals[:to_count]])
    prefill["to"] = to_raw
    return _Opening(args, prefill, checks, to_raw, to_count)


def _parse_send(ctx: _Context) -> Command:
    """/twilio send TO BODY… [--from FROM] [--account LABEL]."""
    opening = _opening(ctx, "from", lambda raw: ctx.phone(raw, "from"))
    if isinstance(opening, Incomplete):
        return opening
    args, to_raw, to_count = opening.args, opening.to_raw, opening.to_count
    if len(args.positionals) == to_count:
        return Incomplete(
            SendCommand.subcommand,
            opening.prefill,
            _problem([lambda: ctx.phone(to_raw, "to"), *opening.checks]),
        )
    to = ctx.phone(to_raw, "to")
    from_ = ctx.phone(args.flags["from"], "from") if "from" in args.flags else None
    body = ctx.body(args, args.positionals[to_count][0])
    check_body(body)
    media = _media(args)
    return SendCommand(
        to=to, body=body, from_=_same_channel(ctx, to, from_), account=ctx.account(args), media=media
    )


def _same_channel(ctx: _Context, to: PhoneNumber, from_: PhoneNumber | None) -> PhoneNumber | None:
    """The sender on the recipient's channel (the WhatsApp rule), or a CommandError."""
    try:
        return sender_for(to, from_)
    except InputError as err:
        raise ctx.fail(err.message, err.field) from None


def _positional_phone(ctx: _Context, args: _Args, field: str) -> int:
    """How many leading positional tokens make up the phone number (contiguous words only)."""
    pos = args.positionals
    run = [pos[0][1]]
    for k in range(1, len(pos)):
        if pos[k][0] != pos[k - 1][0] + 1:
            break
        run.append(pos[k][1])
    return ctx.phone_tokens(run, field)


def _parse_schedule(ctx: _Context) -> Command:
    """/twilio schedule TO WHEN BODY… [--service MG…] [--account LABEL]."""
    opening = _opening(ctx, "service", lambda raw: check_sid(raw, "service", field="service"))
    if isinstance(opening, Incomplete):
        return opening
    args, prefill, checks, to_raw = opening.args, opening.prefill, opening.checks, opening.to_raw
    checks.insert(0, lambda: ctx.phone(to_raw, "to"))
    rest = args.positionals[opening.to_count :]
    if not rest:
        return Incomplete(ScheduleCommand.subcommand, prefill, _problem(checks))
    when_count = _when_tokens(ctx, [tok for _, tok in rest])
    when_raw = ctx.join([tok for _, tok in rest[:when_count]])
    prefill["send_at"] = when_raw

    def when() -> datetime:
        return parse_send_at(when_raw, now=ctx.now, window=ctx.window)

    checks.insert(1, when)
    if len(rest) == when_count:
        return Incomplete(ScheduleCommand.subcommand, prefill, _problem(checks))
    to = ctx.phone(to_raw, "to")
    send_at = when()
    service = (
        check_sid(args.flags["service"], "service", field="service") if "service" in args.flags else None
    )
    body = ctx.body(args, rest[when_count][0])
    check_body(body)
    return ScheduleCommand(
        to=to, send_at=send_at, body=body, service=service, account=ctx.account(args), media=_media(args)
    )


_WHEN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_WHEN_TIME = re.compile(r"[0-9]{2}:[0-9]{2}\S*", re.ASCII)


def _when_tokens(ctx: _Context, tokens: Sequence[Token]) -> int:
    """How many words WHEN takes: "in 30m" is two, "in 30 m" three, "2026-12-01 15:00Z" two."""
    first = tokens[0]
    if first.quoted:
        return 1
    contiguous = [tokens[0]]
    for tok in tokens[1:3]:
        if tok.quoted or tok.start != _next_word(ctx.text, contiguous[-1].end):
            break
        contiguous.append(tok)
    if first.value.lower().startswith("in"):
        for k in range(1, len(contiguous) + 1):
            if DELAY_PATTERN.fullmatch(ctx.join(contiguous[:k])):
                return k
        if len(contiguous) > 1 and contiguous[1].value.isdigit():
            return 2
        return 1
    if (
        _WHEN_DATE.fullmatch(first.value)
        and len(contiguous) > 1
        and _WHEN_TIME.fullmatch(contiguous[1].value)
    ):
        return 2
    return 1


def _parse_list(ctx: _Context) -> Command:
    """/twilio list [scheduled] with optional filters."""
    args = ctx.split(("to", "from", "date", "limit", "account"))
    pos = args.positionals
    scheduled = bool(pos) and not pos[0][1].quoted and pos[0][1].value.lower() == "scheduled"
    ctx.no_positionals(args, after=1 if scheduled else 0)
    if scheduled:
        problems = scheduled_list_problems(
            to="to" in args.flags, from_="from" in args.flags, date="date" in args.flags
        )
        if problems:
            raise ctx.fail(problems[0].message, problems[0].field)
    to = ctx.phone(args.flags["to"], "to") if "to" in args.flags else None
    from_ = ctx.phone(args.flags["from"], "from") if "from" in args.flags else None
    day = parse_date(args.flags["date"]) if "date" in args.flags else None
    limit = parse_page_size(args.flags["limit"]) if "limit" in args.flags else DEFAULT_PAGE_SIZE
    return ListCommand(
        to=to, from_=from_, date_sent=day, limit=limit, account=ctx.account(args), scheduled_only=scheduled
    )


def _sid_parser(build: type[FetchCommand | CancelCommand | DeleteCommand]) -> Callable[[_Context], Command]:
    """Parser for the subcommands that take one message SID: fetch, cancel, delete."""

    def parse(ctx: _Context) -> Command:
        args = ctx.split(("account",))
        prefill = dict(args.flags)
        if not args.positionals:
            return Incomplete(build.subcommand, prefill, _problem([lambda: ctx.account(args)]))
        ctx.no_positionals(args, after=1)
        sid = check_sid(args.positionals[0][1].value, "message")
        return build(sid=sid, account=ctx.account(args))

    return parse


def _parse_history(ctx: _Context) -> Command:
    """/twilio history [N]."""
    args = ctx.split(())
    ctx.no_positionals(args, after=1)
    if not args.positionals:
        return HistoryCommand(DEFAULT_HISTORY)
    raw = args.positionals[0][1].value
    limit = parse_count(raw, low=1, high=MAX_HISTORY, field="limit", name="number of entries")
    return HistoryCommand(limit)


_CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]{2,})(?:\|[^<>]*)?>", re.ASCII)
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{8,}", re.ASCII)
_OFF = frozenset({"off", "none", "stop", "disable"})


def _parse_log_channel(ctx: _Context) -> Command:
    """/twilio log-channel <#C…|name> | C… | off."""
    args = ctx.split(())
    if not args.positionals:
        raise ctx.fail(
            "Say which channel gets the log, like /twilio log-channel #ops, or off to stop.", "channel"
        )
    ctx.no_positionals(args, after=1)
    raw = args.positionals[0][1].value.strip()
    if raw.lower() in _OFF:
        return LogChannelCommand(None)
    return LogChannelCommand(_channel_id(ctx, raw, also=" or off"))


def _channel_id(ctx: _Context, raw: str, *, also: str = "") -> str:
    """The channel ID in `<#C…|name>` or a bare `C…`, or a CommandError saying how to pick one."""
    ref = _CHANNEL_REF.fullmatch(raw)
    if ref:
        return ref.group(1)
    if _CHANNEL_ID.fullmatch(raw):
        return raw
    if raw.startswith("#"):
        raise ctx.fail(
            f"Slack sent {quoted(raw)} as plain text, without the channel's ID; pick the channel from "
            "the list that appears after typing #, or give its ID like C0123456789.",
            "channel",
        )
    raise ctx.fail(f"{quoted(raw)} is not a channel; write #channel-name{also}.", "channel")


def _parse_route(ctx: _Context) -> Command:
    """/twilio route NUMBER #channel [--account LABEL]."""
    args = ctx.split(("account",))
    pos = args.positionals
    count = _positional_phone(ctx, args, "number") if pos else 0
    if len(pos) <= count:
        raise ctx.fail(
            "Say which of our numbers and which channel, like /twilio route +15557654321 #support.",
            "number" if not pos else "channel",
        )
    ctx.no_positionals(args, after=count + 1)
    number = ctx.phone(ctx.join([tok for _, tok in pos[:count]]), "number")
    return RouteCommand(number, _channel_id(ctx, pos[count][1].value.strip()), ctx.account(args))


def _parse_unroute(ctx: _Context) -> Command:
    """/twilio unroute NUMBER."""
    args = ctx.split(())
    if not args.positionals:
        raise ctx.fail("Say which number, like /twilio unroute +15557654321.", "number")
    count = _positional_phone(ctx, args, "number")
    ctx.no_positionals(args, after=count)
    return UnrouteCommand(ctx.phone(ctx.join([tok for _, tok in args.positionals[:count]]), "number"))


_PARSERS: dict[str, Callable[[_Context], Command]] = {
    SetupCommand.subcommand: _bare_parser(SetupCommand),
    AccountsCommand.subcommand: _bare_parser(AccountsCommand),
    SendCommand.subcommand: _parse_send,
    ScheduleCommand.subcommand: _parse_schedule,
    ListCommand.subcommand: _parse_list,
    FetchCommand.subcommand: _sid_parser(FetchCommand),
    CancelCommand.subcommand: _sid_parser(CancelCommand),
    DeleteCommand.subcommand: _sid_parser(DeleteCommand),
    HistoryCommand.subcommand: _parse_history,
    LogChannelCommand.subcommand: _parse_log_channel,
    RouteCommand.subcommand: _parse_route,
    RoutesCommand.subcommand: _bare_parser(RoutesCommand),
    UnrouteCommand.subcommand: _parse_unroute,
}

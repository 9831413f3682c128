"""Admin commands: `python -m bot accounts add|list|remove|default`, `python -m bot rotate-key` and
`python -m bot migrate-sqlite-to-postgres --from PATH`.

The Twilio auth token (or API key secret) is read from standard input when it is piped, or from a
hidden prompt on a terminal; never from the command line, where `ps` and shell history would keep
it. Every error is one sentence on stderr: exit code 2 for a usage mistake, 1 for a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO

from bot.core.errors import InputError
from bot.core.phone import parse_phone
from bot.core.rules import SidKind, check_account_label, check_sid
from bot.installs import Installs, StoredInstallation
from bot.operations import Context
from bot.services import Stores, build_services
from bot.settings import Settings, SettingsError, load_settings
from bot.workspace import AccountSetup, SetupRefused, StoredAccount, Workspace, mask_sid
from storage.crypto import KeyConfigError, WrongKeyError
from storage.db import Database, DatabaseUnavailable

__all__ = ["main_accounts", "main_installs", "main_migrate", "main_rotate_key"]

USAGE_ERROR = 2
FAILURE = 1
_TEAM_ID = re.compile(r"^T[A-Z0-9]{2,}$")


class UsageError(Exception):
    """The command line is wrong; the message is a sentence saying how."""


class Failure(Exception):
    """The command could not be done; the message is a sentence saying why and what to do."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, and prints help to the given stream."""

    def __init__(self, *args: Any, out: TextIO, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._out = out

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            # Never echo them: someone may have typed the auth token on the command line.
            raise UsageError(
                "There are unexpected extra words on the command line (not shown, in case one is a secret); "
                f"the Twilio token is read from standard input or a hidden prompt, never from arguments. "
                f"See: {self.prog} --help"
            )
        text = message[:1].upper() + message[1:]
        raise UsageError(f"{text.rstrip('.')}. See: {self.prog} --help")

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            self._out.write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._out.write(message)
        raise SystemExit(status)


_Action = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class _Streams:
    """Where a command reads the Twilio secret and writes its output; tests pass their own."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO


def _command(build: Callable[[_Streams], tuple[_Parser, _Action]]) -> Callable[..., int]:
    """The `python -m bot …` entry point whose parser and action `build` makes for the given streams.

    The entry point takes the words after the command's name, and the streams and environment to use
    instead of the process's (`env` replaces os.environ over .env); it returns the exit code.
    """

    def main(
        argv: Sequence[str],
        *,
        stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout,
        stderr: TextIO = sys.stderr,
        env: Mapping[str, str] | None = None,
    ) -> int:
        parser, action = build(_Streams(stdin, stdout, stderr))
        return _run(parser, argv, action, env=env, stderr=stderr)

    main.__name__ = main.__qualname__ = build.__name__
    main.__doc__ = build.__doc__
    return main


def _team(text: str) -> str:
    value = text.strip()
    if not _TEAM_ID.match(value):
        raise argparse.ArgumentTypeError(
            f"{value[:30]!r} is not a Slack team ID; it looks like T012AB3CD "
            "(find it in the workspace URL or the Slack admin pages)"
        )
    return value


def _label(text: str) -> str:
    try:
        return check_account_label(text, field="label")
    except InputError as err:
        raise argparse.ArgumentTypeError(err.message.rstrip(".")) from None


def _sid(kind: SidKind, field: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return check_sid(text.strip(), kind, field=field)
        except InputError as err:
            raise argparse.ArgumentTypeError(err.message.rstrip(".")) from None

    parse.__name__ = f"{kind} SID"
    return parse


def _with_commands(
    prog: str, description: str, out: TextIO
) -> tuple[_Parser, argparse._SubParsersAction[_Parser]]:
    """A parser whose first word must be one of its commands, and the place to add those commands."""
    parser = _Parser(prog=prog, description=description, out=out)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    commands.required = True
    return parser, commands


def _accounts_parser(out: TextIO) -> _Parser:
    parser, commands = _with_commands(
        "python -m bot accounts",
        "Manage each workspace's Twilio accounts (stored encrypted at DATABASE_URL or DATABASE_PATH).",
        out,
    )

    add = commands.add_parser(
        "add",
        help="add or replace an account",
        description=(
            "Add a Twilio account to a workspace, or replace the one with the same label. The auth token "
            "(or, with --api-key, the API key secret) is read from standard input when piped, otherwise "
            "from a hidden prompt; it is never taken from the command line."
        ),
        out=out,
    )
    add.add_argument("--team", required=True, type=_team, help="Slack team ID (T…)")
    add.add_argument("--label", required=True, type=_label, help="short name, for example: main")
    add.add_argument("--sid", required=True, type=_sid("account", "sid"), help="Twilio Account SID (AC…)")
    add.add_argument("--api-key", type=_sid("api_key", "api_key"), help="API key SID (SK…) to use instead")
    add.add_argument("--from", dest="from_", metavar="FROM", help="default sender number (E.164)")
    add.add_argument("--service", type=_sid("service", "service"), help="default Messaging Service SID (MG…)")
    add.add_argument("--default", action="store_true", help="make it the workspace's default account")
    add.add_argument("--no-verify", action="store_true", help="store without checking the credentials")
    add.add_argument(
        "--webhook-token",
        action="store_true",
        help="with --api-key: also read the account's auth token (the next line of standard input, or a "
        "second prompt), kept only to check Twilio's status callbacks",
    )
    add.add_argument("--added-by", default=None, help="who added it (default: cli:<your user name>)")

    listing = commands.add_parser("list", help="list a workspace's accounts (SIDs masked)", out=out)
    listing.add_argument("--team", required=True, type=_team, help="Slack team ID (T…)")

    remove = commands.add_parser("remove", help="remove an account", out=out)
    remove.add_argument("--team", required=True, type=_team, help="Slack team ID (T…)")
    remove.add_argument("--label", required=True, type=_label, help="the account's label")

    default = commands.add_parser("default", help="make an account the workspace's default", out=out)
    default.add_argument("--team", required=True, type=_team, help="Slack team ID (T…)")
    default.add_argument("--label", required=True, type=_label, help="the account's label")
    return parser


def _settings(env: Mapping[str, str] | None) -> Settings:
    try:
        return load_settings(env)
    except SettingsError as err:
        raise Failure(str(err)) from None


async def _open(settings: Settings) -> Database:
    try:
        return await Database.connect(
            settings.database_target,
            secret_keys=settings.secret_key,
            pool_size=min(2, settings.database_pool_size),
        )
    except KeyConfigError as err:
        raise Failure(str(err)) from None
    except (OSError, sqlite3.Error) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise Failure(
            f"Cannot open the database {settings.database_path} ({reason}); "
            "check DATABASE_PATH and that its folder is writable."
        ) from None


def _read_secret(stdin: TextIO, stderr: TextIO, *, api_key: bool, purpose: str = "") -> str:
    what = ("API key secret" if api_key else "auth token") + purpose
    if stdin.isatty():
        secret = getpass.getpass(f"Twilio {what} (hidden): ", stream=stderr)
    else:
        secret = stdin.readline()
    secret = secret.strip()
    if not secret:
        raise UsageError(
            f"No Twilio {what} was given; pipe it on standard input (for example from a password manager) "
            "or type it at the prompt."
        )
    if len(secret) > 256 or any(ch.isspace() or not ch.isprintable() for ch in secret):
        raise UsageError(
            f"The Twilio {what} should be one word of letters and digits (copy it from the Twilio console); "
            "what was given has spaces or is too long."
        )
    return secret


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def _columns(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """The header and rows as text columns, each as wide as its widest cell."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def _table(accounts: Sequence[StoredAccount]) -> str:
    header = ("LABEL", "DEFAULT", "ACCOUNT SID", "API KEY", "FROM", "SERVICE")
    rows = [
        (
            a.label,
            "*" if a.is_default else "",
            mask_sid(a.account_sid),
            mask_sid(a.api_key_sid) or "-",
            a.default_from or "-",
            a.default_service_sid or "-",
        )
        for a in accounts
    ]
    return _columns(header, rows)


@contextlib.asynccontextmanager
async def _installs(settings: Settings) -> AsyncIterator[Installs]:
    """The installations service over the configured database, for one command."""
    db = await _open(settings)
    try:
        stores = Stores.over(db)
        yield Installs(stores.installations, stores.states, stores.audit)
    finally:
        await db.close()


def _installs_table(installs: Sequence[StoredInstallation]) -> str:
    header = ("TEAM", "NAME", "INSTALLED AT", "SCOPES")
    rows = [
        (
            i.team_id or f"{i.enterprise_id} (org-wide)",
            (i.team_name or i.enterprise_name or "-")[:40],
            i.installed_at.strftime("%Y-%m-%d %H:%M UTC"),
            ",".join(i.bot_scopes) or "-",
        )
        for i in installs
    ]
    return _columns(header, rows)


def _installs_parser(out: TextIO) -> _Parser:
    parser, commands = _with_commands(
        "python -m bot installs",
        "The Slack workspaces that installed the app through /slack/install (OAuth mode).",
        out,
    )
    commands.add_parser("list", help="list installed workspaces (team, name, installed at, scopes)", out=out)
    remove = commands.add_parser(
        "remove",
        help="forget a workspace as an uninstall does",
        description=(
            "Delete the workspace's Slack tokens and its Twilio accounts at once, as when it uninstalls the "
            "app. The audit log stays. The app stays in the workspace's Slack until it is removed there too."
        ),
        out=out,
    )
    remove.add_argument("team", type=_team, metavar="TEAM", help="Slack team ID (T…)")
    return parser


@_command
def main_installs(streams: _Streams) -> tuple[_Parser, _Action]:
    """`python -m bot installs list|remove TEAM`: the installed workspaces, and forgetting one.

    Returns the exit code: 0 done, 1 failed, 2 usage error.
    """
    stdout = streams.stdout

    async def action(args: argparse.Namespace, settings: Settings) -> None:
        async with _installs(settings) as installs:
            if args.command == "list":
                found = await installs.all()
                if not found:
                    stdout.write(
                        "No workspace has installed the app yet; in OAuth mode, workspaces install it from "
                        "the bot's /slack/install page.\n"
                    )
                else:
                    stdout.write(_installs_table(found))
                return
            gone = await installs.forget(team_id=args.team, why=f"removed by {_who()}")
            if not gone.installations and not gone.accounts and not gone.routes:
                raise Failure(
                    f"Team {args.team} has no installation and no Twilio accounts here; "
                    "see: python -m bot installs list"
                )
            plural = "" if gone.accounts == 1 else "s"
            routes = "" if gone.routes == 1 else "s"
            stdout.write(
                f"Forgot team {args.team}: its Slack tokens, {gone.accounts} Twilio account{plural} and "
                f"{gone.routes} route{routes} (with their conversations) are deleted; the audit log stays.\n"
            )

    return _installs_parser(stdout), action


@contextlib.asynccontextmanager
async def _workspace(settings: Settings) -> AsyncIterator[tuple[Workspace, Database]]:
    """The workspace service over the configured database (and the database), for one command."""
    import aiohttp

    from bot.twilio.client import TwilioClient

    db = await _open(settings)
    try:
        async with aiohttp.ClientSession() as session:
            twilio = TwilioClient(
                session, settings.twilio_api_url, timeout=settings.twilio_timeout, max_attempts=2
            )
            yield build_services(settings, Stores.over(db), twilio, clock=_utcnow).workspace, db
    finally:
        await db.close()


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _accounts(args: argparse.Namespace, settings: Settings, streams: _Streams) -> None:
    stdout = streams.stdout
    async with _workspace(settings) as (workspace, _):
        if args.command == "add":
            await _add(args, settings, workspace, streams)
        elif args.command == "list":
            accounts = await workspace.accounts(args.team)
            if not accounts:
                stdout.write(
                    f"Team {args.team} has no Twilio accounts yet; add one with: "
                    f"python -m bot accounts add --team {args.team} --label main --sid AC…\n"
                )
            else:
                stdout.write(_table(accounts))
        elif args.command == "remove":
            if not await workspace.remove_account(args.team, args.label):
                raise Failure(_no_such(args.team, args.label))
            stdout.write(f"Removed the account '{args.label}' from team {args.team}.\n")
            now_default = await workspace.default_account(args.team)
            if now_default is not None:
                stdout.write(f"The default account is '{now_default.label}'.\n")
        elif args.command == "default":
            if not await workspace.make_default(args.team, args.label):
                raise Failure(_no_such(args.team, args.label))
            stdout.write(f"'{args.label}' is now the default account of team {args.team}.\n")


def _no_such(team: str, label: str) -> str:
    return f"Team {team} has no account labelled '{label}'; see: python -m bot accounts list --team {team}"


async def _add(args: argparse.Namespace, settings: Settings, workspace: Workspace, streams: _Streams) -> None:
    stdin, stdout, stderr = streams.stdin, streams.stdout, streams.stderr
    default_from: str | None = None
    if args.from_ is not None:
        try:
            default_from = str(parse_phone(args.from_, default_region=settings.default_region, field="from"))
        except InputError as err:
            raise UsageError(err.message) from None
    secret = _read_secret(stdin, stderr, api_key=args.api_key is not None)
    webhook_token: str | None = None
    if args.webhook_token:
        if args.api_key is None:
            raise UsageError(
                "--webhook-token goes with --api-key: an account added with its auth token already "
                "checks webhooks with it."
            )
        webhook_token = _read_secret(stdin, stderr, api_key=False, purpose=" for webhooks")
    setup = AccountSetup(
        label=args.label,
        account_sid=args.sid,
        secret=secret,
        api_key_sid=args.api_key,
        default_from=default_from,
        default_service_sid=args.service,
        make_default=bool(args.default),
        webhook_token=webhook_token,
    )
    who = Context(team_id=args.team, user_id=args.added_by or _who(), channel_id=None)
    try:
        added = await workspace.set_up_account(who, setup, verify=not args.no_verify)
    except SetupRefused as err:
        if err.unreachable:
            raise Failure(
                f"{err.message.rstrip('.')}. Check the network and TWILIO_API_URL "
                f"({settings.twilio_api_url}), or pass --no-verify to store them unchecked."
            ) from None
        raise Failure(err.message) from None
    info = added.checked
    if info is None:
        checked = "not checked with Twilio (--no-verify)"
    else:
        name = f"{info.friendly_name!r} ({info.status})" if info.friendly_name else info.status
        checked = f"checked with Twilio: {name}"
    account = added.account
    default = " It is the team's default account." if account.is_default else ""
    stdout.write(
        f"Stored the account '{account.label}' ({mask_sid(account.account_sid)}) for team {account.team_id}, "
        f"{checked}.{default}\n"
    )
    if args.api_key is not None and webhook_token is None:
        stdout.write(
            "Twilio's status callbacks for this account will be refused (403): they are signed with the "
            "auth token, not the API key. Add it again with --webhook-token to give it.\n"
        )


def _run(
    parser: _Parser,
    argv: Sequence[str],
    action: _Action,
    *,
    env: Mapping[str, str] | None,
    stderr: TextIO,
) -> int:
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0
    except UsageError as err:
        stderr.write(f"{err}\n")
        return USAGE_ERROR
    try:
        settings = _settings(env)
        asyncio.run(action(args, settings))
    except UsageError as err:
        stderr.write(f"{err}\n")
        return USAGE_ERROR
    except (Failure, WrongKeyError, DatabaseUnavailable) as err:
        stderr.write(f"{err}\n")
        return FAILURE
    except sqlite3.Error as err:
        stderr.write(
            f"The database could not be used ({err}); check DATABASE_PATH, free disk space, and that no "
            "other process holds the file locked for long.\n"
        )
        return FAILURE
    except KeyboardInterrupt:
        stderr.write("Stopped; nothing more was changed.\n")
        return FAILURE
    except Exception as err:  # a bug or an unexpected environment: a sentence, not a traceback
        stderr.write(
            f"Unexpected {type(err).__name__}; nothing more was changed. Please report it with the command "
            "you ran (but never include a token).\n"
        )
        return FAILURE
    return 0


@_command
def main_accounts(streams: _Streams) -> tuple[_Parser, _Action]:
    """`python -m bot accounts …`: add, list, remove or choose the default Twilio account of a workspace.

    `argv` excludes the word `accounts`. `env` replaces the environment (default: os.environ over .env).
    Returns the exit code: 0 done, 1 failed, 2 usage error.
    """

    async def action(args: argparse.Namespace, settings: Settings) -> None:
        await _accounts(args, settings, streams)

    return _accounts_parser(streams.stdout), action


@_command
def main_rotate_key(streams: _Streams) -> tuple[_Parser, _Action]:
    """`python -m bot rotate-key`: re-encrypt every stored secret with the newest key in SECRET_KEY.

    Put the new key first in SECRET_KEY and keep the old one after it, run this, then drop the old
    key. Returns the exit code: 0 done, 1 failed, 2 usage error.
    """
    stdout = streams.stdout
    parser = _Parser(
        prog="python -m bot rotate-key",
        description=(
            "Re-encrypt every stored Twilio secret with the newest key in SECRET_KEY (the first of the "
            "comma-separated keys). Keep the old key after the new one until this has run."
        ),
        out=stdout,
    )

    async def action(args: argparse.Namespace, settings: Settings) -> None:
        del args
        async with _workspace(settings) as (workspace, db):
            count = await workspace.rotate_keys()
            tokens = await workspace.rotate_slack_tokens()
            key_count = db.box.key_count
        source = "SECRET_KEY" if settings.secret_key else f"the key file beside {settings.database_path}"
        plural = "" if count == 1 else "s"
        stdout.write(f"Re-encrypted {count} stored Twilio secret{plural} with the newest key in {source}.\n")
        if tokens:
            stdout.write(f"Re-encrypted {tokens} stored Slack token{'' if tokens == 1 else 's'} as well.\n")
        if settings.secret_key and key_count > 1:
            stdout.write(
                "The older keys in SECRET_KEY are no longer needed: remove them once every replica "
                "runs with the new SECRET_KEY.\n"
            )

    return parser, action


@_command
def main_migrate(streams: _Streams) -> tuple[_Parser, _Action]:
    """`python -m bot migrate-sqlite-to-postgres --from PATH`: copy a SQLite database into the empty
    PostgreSQL database at DATABASE_URL, secrets still encrypted, and print the rows per table.

    Returns the exit code: 0 done, 1 failed (nothing written), 2 usage error.
    """
    stdout = streams.stdout
    parser = _Parser(
        prog="python -m bot migrate-sqlite-to-postgres",
        description=(
            "Copy the bot's SQLite database into the empty PostgreSQL database at DATABASE_URL. Secrets are "
            "copied encrypted: run the bot on PostgreSQL with the same SECRET_KEY (or the contents of the "
            "secret.key file beside the SQLite database). The SQLite file is only read."
        ),
        out=stdout,
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="PATH", help="the SQLite file (bot.db)"
    )

    async def action(args: argparse.Namespace, settings: Settings) -> None:
        from storage.postgres import redact_url
        from storage.sqlite_to_postgres import CopyError, copy_sqlite_to_postgres

        if not settings.database_url:
            raise UsageError(
                "Set DATABASE_URL to the PostgreSQL database to copy into "
                "(for example postgresql://bot:password@db.example/bot)."
            )
        try:
            counts = await copy_sqlite_to_postgres(args.source, settings.database_url)
        except CopyError as err:
            raise Failure(str(err)) from None
        width = max((len(table) for table in counts), default=5)
        for table, rows in counts.items():
            stdout.write(f"{table.ljust(width)}  {rows}\n")
        total = sum(counts.values())
        stdout.write(
            f"Copied {total} row{'' if total == 1 else 's'} from {args.source} into "
            f"{redact_url(settings.database_url)}; the counts match. Start the bot with DATABASE_URL set "
            "and the same SECRET_KEY.\n"
        )

    return parser, action

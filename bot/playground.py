"""`python -m bot playground`: the whole bot on loopback, with simulated Slack and Twilio.

The bot here is the production server, unchanged: it verifies Slack signatures, keeps its accounts
encrypted in SQLite and calls Twilio over HTTP. Only the far ends are stand-ins, given to it the way a
deployment gives real ones: SLACK_API_URL and TWILIO_API_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import socket
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bot import logs
from bot.core.commands import DESCRIPTIONS, USAGE
from bot.sandbox import twilio as twilio_sim
from bot.sandbox.phone import DEFAULT_PHONE, PhonePanel
from bot.sandbox.slack import ADMIN_ID, CLIENT_ID, CLIENT_SECRET, TEAM_ID, SlackSimulator
from bot.server import start_server
from bot.settings import Settings
from storage.accounts import AccountStore, NewAccount
from storage.db import Database

MAGIC_NUMBERS = """\
Twilio's test numbers work here as they do with Twilio's test credentials:
  To +15005550001 → invalid number (21211)     To +15005550004 → recipient sent STOP (21610)
  To +15005550003 → no permission (21408)      To +15005550009 → not a mobile number (21614)
  To a number ending in 0666 → undelivered     From +15005550007 → not your number (21606)
Any other possible number is delivered: queued → sent (1 s) → delivered (3 s), and the card follows."""

# A second simulated Twilio account that is not set up in the bot, so `/twilio setup` can be tried; once
# added, every form offers a choice of account.
SECOND_ACCOUNT_SID = "AC" + "5ec0d0ac" * 4
SECOND_FROM = "+15550001111"
SECOND_SERVICE_SID = "MG" + "5ec0d0ac" * 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot playground", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", type=Path, help="keep the bot's database in this file (default: a temporary one)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port for the page (default 8765; 0 for any free)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address for the page (default 127.0.0.1)")
    parser.add_argument(
        "--oauth",
        action="store_true",
        help="OAuth mode: two simulated workspaces, each installs the bot through /slack/install",
    )
    return parser


async def run(
    db_path: Path, *, host: str, port: int, ready: asyncio.Event | None = None, oauth: bool = False
) -> None:
    """Start the three servers, print the page's address, and serve until cancelled.

    `oauth`: the bot in OAuth mode, with a second simulated workspace; neither has the bot installed
    until someone goes through its /slack/install page. Each gets a Twilio account of its own.
    """
    twilio = twilio_sim.TwilioSimulator(twilio_sim.SimClock(follow_real_time=True))
    twilio_url = await twilio.start()
    token = twilio.add_sandbox_account()
    second_token = secrets.token_hex(16)
    twilio.add_account(
        SECOND_ACCOUNT_SID,
        second_token,
        friendly_name="Second sandbox",
        numbers=(SECOND_FROM,),
        services=(SECOND_SERVICE_SID,),
    )

    signing_secret = secrets.token_hex(16)
    bot_token = "xoxb-playground-" + secrets.token_hex(12)
    slack = SlackSimulator(
        signing_secret=signing_secret,
        bot_token=bot_token,
        command_hints=USAGE,
        command_descriptions=DESCRIPTIONS,
    )
    try:
        page_url = await slack.start(host=host, port=port)
    except OSError:
        page_url = await slack.start(host=host, port=0)  # the usual port is taken: any free one will do

    logs.configure("WARNING", "console", secrets=[signing_secret, bot_token, token])
    # The bot's own address is its PUBLIC_URL here: the Twilio simulator calls each message's
    # StatusCallback on it (cards change live in the page) and delivers texts to our numbers there.
    bot_port = _free_port()
    public_url = f"http://127.0.0.1:{bot_port}"
    settings = Settings(
        slack_signing_secret=signing_secret,
        slack_bot_token=None if oauth else bot_token,
        slack_client_id=CLIENT_ID if oauth else None,
        slack_client_secret=CLIENT_SECRET if oauth else None,
        slack_api_url=slack.api_url,
        twilio_api_url=twilio_url,
        database_path=db_path,
        public_url=public_url,
    )
    second_team = slack.add_team("Second Co", install=False) if oauth else None
    db = await Database.connect(db_path)
    try:
        # Added afresh each start (an add with the same label updates it): the simulator's token is new.
        await AccountStore(db).add(
            NewAccount(
                team_id=TEAM_ID,
                label="sandbox",
                account_sid=twilio_sim.SANDBOX_ACCOUNT_SID,
                secret=token,
                default_from=twilio_sim.DEFAULT_FROM,
                default_service_sid=twilio_sim.DEFAULT_SERVICE_SID,
                added_by=ADMIN_ID,
            )
        )
        if second_team is not None:
            await AccountStore(db).add(
                NewAccount(
                    team_id=second_team.id,
                    label="second",
                    account_sid=SECOND_ACCOUNT_SID,
                    secret=second_token,
                    default_from=SECOND_FROM,
                    default_service_sid=SECOND_SERVICE_SID,
                    added_by=second_team.admin_id,
                )
            )
    finally:
        await db.close()

    runner, bot_url = await start_server(settings, host="127.0.0.1", port=bot_port)
    slack.set_bot_url(f"{bot_url}/slack/events")
    # Texts to the sandbox number already come to the bot; route it to a channel to see them.
    twilio.set_sms_url(twilio_sim.DEFAULT_FROM, f"{public_url}/twilio/inbound")
    phone = PhonePanel(twilio, [twilio_sim.DEFAULT_FROM, SECOND_FROM])
    phone_url = await phone.start(host=host)
    if second_team is not None:
        slack.oauth_redirect_url = f"{bot_url}/slack/oauth_redirect"
        print(
            f"\nOAuth mode: two workspaces ({slack.teams[TEAM_ID].name} and {second_team.name}), the bot "
            "installed in neither.\n"
            f"Open {bot_url}/slack/install, press Add to Slack and allow it in one workspace; then again "
            "for the other.\nEach already has a Twilio account stored (the first 'sandbox', the second "
            "'second'). In the page, pick a workspace (top left) and click Home under Apps: each shows its "
            "own Home tab.\n"
            "To uninstall the app from one: curl -H 'Content-Type: application/json' "
            f'-d \'{{"team_id": "{second_team.id}"}}\' {page_url}/ui/uninstall',
            flush=True,
        )
    print(
        f"\nPlayground ready: open {page_url}/ in a browser.\n\n"
        f"  bot        {bot_url} (the real server; Slack requests are signed and checked)\n"
        f"  Twilio     {twilio_url} (simulator; account 'sandbox', From {twilio_sim.DEFAULT_FROM},\n"
        f"             Messaging Service {twilio_sim.DEFAULT_SERVICE_SID})\n"
        f"  database   {db_path}\n"
        f"  phone      {phone_url}/ (a customer's phone, {DEFAULT_PHONE}: text our numbers from it)\n\n"
        f"{MAGIC_NUMBERS}\n\n"
        f"Two-way texts: `/twilio route {twilio_sim.DEFAULT_FROM} #ops`, then text that number from the\n"
        "phone page; the text opens a thread in #ops, and a reply in the thread comes back to the phone.\n\n"
        f"To try `/twilio setup` (as Ada Admin), add the simulator's second account:\n"
        f"  Account SID {SECOND_ACCOUNT_SID}  Auth Token {second_token}\n"
        f"  From {SECOND_FROM}  Messaging Service {SECOND_SERVICE_SID}\n\n"
        "Try `/twilio help` in #general. Ctrl-C stops.",
        flush=True,
    )
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await phone.stop()
        await runner.cleanup()
        await slack.stop()
        await twilio.stop()


def _free_port() -> int:
    """A loopback port free right now (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def main(argv: list[str]) -> int:
    """Entry point for `python -m bot playground`."""
    args = _parser().parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.db:
            db_path = args.db
        else:
            db_path = (
                Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="twilio-bridge-"))) / "bot.db"
            )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_until_signal(run(db_path, host=args.host, port=args.port, oauth=args.oauth)))
    print("Playground stopped.", file=sys.stderr)
    return 0


async def _until_signal(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task

"""The bot as a real process (`python -m bot serve`), for tests that kill it or send it SIGTERM.

The simulated far ends run in the test's own loop (`FarEnds`), so a test can hold a create at Twilio with
`twilio.wait_held()` while the bot in the other process waits for the answer. Nothing here sleeps for
timing: every wait is on a condition (a log line, an HTTP answer, a process exit) with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
from builders import accepted_send, claimed_send
from cryptography.fernet import Fernet
from harness import json_text
from sandbox_accounts import store_sandbox_account
from waiting import until

from bot.sandbox.slack import GENERAL_ID, OPS_ID, SlackSimulator
from bot.sandbox.twilio import (
    DEFAULT_FROM,
    Fault,
    SimClock,
    TwilioSimulator,
)
from storage.db import Database
from storage.journal import Journal
from storage.outbox import Outbox

REPO_ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 20.0
APP_TOKEN = "xapp-1-A0PLAYGRND-1-" + secrets.token_hex(16)  # Slack's app-level token, for Socket Mode


def run_bot(
    command: str, *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m bot <command>` run to its end (a minute at most), with its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "bot", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def unused_port() -> int:
    """A loopback port nobody listens on right now (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def table_rows(db_path: Path, table: Literal["outbox", "journal"]) -> list[dict[str, Any]]:
    """A table as SQLite has it on disk, oldest row first (read once every bot process has ended)."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY id")]  # noqa: S608
    finally:
        conn.close()


def outbox_rows(db_path: Path) -> list[dict[str, Any]]:
    """The outbox as SQLite has it on disk."""
    return table_rows(db_path, "outbox")


def only_text(cards: list[dict[str, Any]]) -> str:
    """The text of the one card in `cards` (fails when there is not exactly one)."""
    assert len(cards) == 1, f"expected exactly one card, got {len(cards)}: {[c.get('text') for c in cards]}"
    return str(cards[0].get("text") or "") + "\n" + json_text(cards[0].get("blocks") or [])


@dataclass
class FarEnds:
    """Slack and Twilio simulators in this process, and the secrets the bot needs to talk to them."""

    slack: SlackSimulator
    twilio: TwilioSimulator
    twilio_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    bot_token: str = field(repr=False)
    secret_key: str = field(repr=False)

    def cards(self, channel_id: str = GENERAL_ID) -> list[dict[str, Any]]:
        """Messages the bot posted in `channel_id`, oldest first."""
        return [m for m in self.slack.messages(channel_id) if m.get("bot_id")]

    async def stop(self) -> None:
        """Stop both simulators."""
        await self.slack.stop()
        await self.twilio.stop()


async def start_far_ends(*, socket_mode: bool = False) -> FarEnds:
    """Start the simulators; Twilio's clock follows real time, as the bot's does in another process.

    With `socket_mode` Slack delivers commands only over Socket Mode, to a bot holding APP_TOKEN.
    """
    twilio = TwilioSimulator(SimClock(datetime.now(UTC), follow_real_time=True))
    await twilio.start()
    token = twilio.add_sandbox_account()
    signing_secret = secrets.token_hex(16)
    bot_token = "xoxb-proc-" + secrets.token_hex(8)
    app_token = APP_TOKEN if socket_mode else None
    slack = SlackSimulator(
        signing_secret=signing_secret, bot_token=bot_token, app_token=app_token, socket_mode=socket_mode
    )
    await slack.start()
    return FarEnds(slack, twilio, token, signing_secret, bot_token, Fernet.generate_key().decode())


async def store_account(ends: FarEnds, target: Path | str, *, installed: bool = False) -> None:
    """Store the sandbox account for the playground team, as `/twilio setup` would, before the bot starts.

    `target` is the SQLite file, or a `postgresql://` URL (a test's schema). With `installed`, the team's
    OAuth installation holding the far ends' bot token is stored too (for a bot in OAuth mode).
    """
    bot_token = ends.bot_token if installed else None
    await store_sandbox_account(
        target, secret_key=ends.secret_key, token=ends.twilio_token, bot_token=bot_token
    )


async def store_routed_account(ends: FarEnds, db_path: Path) -> None:
    """The sandbox account stored, and its default number routed to #ops, before the bot starts."""
    await store_sandbox_account(db_path, secret_key=ends.secret_key, token=ends.twilio_token, route_to=OPS_ID)


async def claim_pending_send(ends: FarEnds, db_path: Path, *, key: str, to: str, body: str) -> None:
    """Leave what a process killed right after claiming a send leaves: a pending outbox row, nothing else."""
    async with await Database.connect(db_path, secret_keys=ends.secret_key) as db:
        await Outbox(db).claim(claimed_send(key, {"to": to, "from": DEFAULT_FROM, "body": body}))


async def record_accepted_send(
    ends: FarEnds, target: Path | str, *, key: str, fields: dict[str, Any], accepted_at: datetime
) -> None:
    """Leave what a process that acked the admin's `/twilio send` in #general and died leaves: a journal
    entry with `fields`, not run. `target` is the SQLite file or a `postgresql://` URL."""
    async with await Database.connect(target, secret_keys=ends.secret_key, pool_size=1) as db:
        await Journal(db).record(accepted_send(key, fields, accepted_at=accepted_at))


@dataclass
class BotProcess:
    """One `python -m bot serve` process and where its log goes."""

    proc: asyncio.subprocess.Process
    url: str
    log_path: Path

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def wait_log(self, text: str, *, timeout: float = 10.0) -> None:
        """Wait until `text` appears in the log (fails early if the process exits)."""
        await until(
            lambda: text in self.log() or self.proc.returncode is not None, timeout=timeout, what=repr(text)
        )
        assert text in self.log(), f"the bot exited before logging {text!r}:\n{self.log()[-3000:]}"

    async def healthz(self) -> int | None:
        """The status GET /healthz answers now (None: no answer within 2 s, or no connection)."""
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as resp,
            ):
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def healthy(self) -> bool:
        """Whether GET /healthz answers 200 now."""
        return await self.healthz() == 200

    async def wait_ready(self, *, timeout: float = START_SECONDS) -> None:
        """Wait until the bot answers /healthz (fails with its log if it exits first)."""

        async def up_or_gone() -> bool:
            return self.proc.returncode is not None or await self.healthy()

        try:
            await until(up_or_gone, timeout=timeout, what="the bot to answer /healthz")
        except AssertionError as err:
            raise AssertionError(f"{err}:\n{self.log()[-3000:]}") from None
        if self.proc.returncode is not None:
            raise AssertionError(f"the bot exited with {self.proc.returncode}:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no shut-down code runs at all."""
        self.proc.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM: the graceful shut-down."""
        self.proc.send_signal(signal.SIGTERM)

    async def wait(self, *, timeout: float = 15.0) -> int:
        """The exit code, once the process has ended."""
        try:
            return await until(self.proc.wait(), timeout=timeout, what="the bot to exit")
        except AssertionError as err:
            self.kill()
            await self.proc.wait()
            raise AssertionError(f"{err}:\n{self.log()[-3000:]}") from None

    async def stop(self) -> None:
        """End the process if it still runs (for clean-up after a failed test)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.kill()
            await self.proc.wait()


def bot_environment(ends: FarEnds, db_path: Path, **env: str) -> dict[str, str]:
    """What every bot process gets: the far ends' URLs and secrets, and a home beside the database."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "HOME": str(db_path.parent),
        "SLACK_BOT_TOKEN": ends.bot_token,
        "SLACK_API_URL": ends.slack.api_url,
        "TWILIO_API_URL": ends.twilio.url,
        "DATABASE_PATH": str(db_path),
        "SECRET_KEY": ends.secret_key,
        "LOG_LEVEL": "INFO",
        **env,
    }


async def spawn_bot(mode: str, environment: dict[str, str], log_path: Path, url: str = "") -> BotProcess:
    """Run `python -m bot <mode>` with exactly `environment`, its output appended to `log_path`."""
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            mode,
            cwd=log_path.parent,  # no .env from the checkout
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    return BotProcess(proc, url, log_path)


async def start_bot(ends: FarEnds, db_path: Path, *, log_name: str = "bot", **env: str) -> BotProcess:
    """Run `python -m bot serve` against `ends` on a free port with the database at `db_path`."""
    log_path = db_path.parent / f"{log_name}.log"
    for attempt in range(3):
        # The port is free when chosen; another process may take it before the bot binds it: try another.
        port = unused_port()
        environment = bot_environment(
            ends, db_path, SLACK_SIGNING_SECRET=ends.signing_secret, HOST="127.0.0.1", PORT=str(port), **env
        )
        bot = await spawn_bot("serve", environment, log_path, f"http://127.0.0.1:{port}")
        try:
            await bot.wait_ready()
        except AssertionError:
            await bot.stop()
            if attempt < 2 and "address already in use" in bot.log().lower():
                continue
            raise
        except BaseException:
            await bot.stop()
            raise
        ends.slack.set_bot_url(f"{bot.url}/slack/events")
        return bot
    raise AssertionError("unreachable: the last attempt raises")


async def start_worker(ends: FarEnds, db_path: Path, *, log_name: str = "worker", **env: str) -> BotProcess:
    """Run `python -m bot work` against `ends` on the database at `db_path` (health on a free port);
    `env` adds settings (DATABASE_URL for PostgreSQL)."""
    port = unused_port()
    environment = bot_environment(ends, db_path, HOST="127.0.0.1", PORT=str(port), WORKER_PROCESS="1", **env)
    worker = await spawn_bot(
        "work", environment, db_path.parent / f"{log_name}.log", f"http://127.0.0.1:{port}"
    )
    try:
        await worker.wait_ready()
    except BaseException:
        await worker.stop()
        raise
    return worker


async def hold_a_create(ends: FarEnds, text: str) -> None:
    """`/twilio <text>` while Twilio holds every create: returns once Twilio has applied it and holds on."""
    ends.twilio.inject(Fault("apply_then_hold", method="POST", path_contains="/Messages.json"))
    ack = await ends.slack.slash_command(text)
    assert ack.status == 200, ack
    await until(ends.twilio.wait_held(), what="Twilio to hold the create")


async def start_bot_mid_create(ends: FarEnds, db_path: Path, text: str, **options: str) -> BotProcess:
    """Start the bot (`start_bot` options) on `db_path`, which holds the account (the `bot_db` fixture),
    and hold its create for `/twilio <text>`."""
    bot = await start_bot(ends, db_path, **options)
    try:
        await hold_a_create(ends, text)
    except BaseException:
        await bot.stop()
        raise
    return bot


async def recover(
    ends: FarEnds,
    db_path: Path,
    *,
    log_name: str = "bot",
    what: str = "the recovered card",
    done: Callable[[], bool] | None = None,
) -> BotProcess:
    """Start the bot on `db_path` again, wait for what its start-up recovery posts, stop it cleanly.

    It waits for `done` when given, else for a card in the channel; the stopped process keeps its log.
    """
    bot = await start_bot(ends, db_path, log_name=log_name)
    try:
        await until(done or (lambda: bool(ends.cards())), what=what)
        bot.terminate()
        assert await bot.wait() == 0
    finally:
        await bot.stop()
    return bot

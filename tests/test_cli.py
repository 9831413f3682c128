"""The admin CLI: `accounts add|list|remove|default` and `rotate-key`, with the token only on stdin."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.cli import main_accounts, main_rotate_key
from bot.sandbox.twilio import TwilioSimulator
from storage.accounts import AccountStore
from storage.crypto import WrongKeyError
from storage.db import Database

TEAM = "T0123ABCD"
SID = "AC" + "0123456789abcdef" * 2
KEY_SID = "SK" + "5" * 32
TOKEN = "9f86d081884c7d659a2feaa0c55ad015"
API_SECRET = "Zq7XvP2mKc9LwR4tYb6NhJ3sDf8GaQe1"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
KEYED_WITH_WEBHOOK_TOKEN = ("--api-key", KEY_SID, "--webhook-token")  # stdin: the API secret, then the token


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_accounts(argv: list[str], env: dict[str, str], stdin: str = "") -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main_accounts(argv, stdin=io.StringIO(stdin), stdout=out, stderr=err, env=env)
    return Result(code, out.getvalue(), err.getvalue())


def run_rotate(env: dict[str, str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main_rotate_key([], stdout=out, stderr=err, env=env)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_PATH": str(tmp_path / "data" / "bot.db"), "SECRET_KEY": OLD_KEY}


@pytest.fixture
async def sim_env(env: dict[str, str]) -> AsyncIterator[tuple[TwilioSimulator, dict[str, str]]]:
    sim = TwilioSimulator()
    url = await sim.start()
    sim.add_account(SID, TOKEN, friendly_name="Acme", api_keys={KEY_SID: API_SECRET})
    yield sim, {**env, "TWILIO_API_URL": url}
    await sim.stop()


def _add(env: dict[str, str], *extra: str, token: str = TOKEN) -> Result:
    argv = ["add", "--team", TEAM, "--label", "main", "--sid", SID, *extra]
    return run_accounts(argv, env, stdin=token + "\n")


def test_add_with_token_on_stdin_then_list_masks_and_remove(env: dict[str, str]) -> None:
    """add (no verify) stores the token from stdin; list masks SIDs and never prints it; remove works."""
    added = _add(env, "--no-verify", "--from", "+1 555 123 4567", "--added-by", "ops")
    assert added.code == 0, added.err
    assert "Stored the account 'main' (AC01…cdef)" in added.out
    assert "default" in added.out

    listed = run_accounts(["list", "--team", TEAM], env)
    assert listed.code == 0
    assert "main" in listed.out and "AC01…cdef" in listed.out and "+15551234567" in listed.out
    assert SID not in listed.out

    removed = run_accounts(["remove", "--team", TEAM, "--label", "main"], env)
    assert removed.code == 0 and "Removed the account 'main'" in removed.out
    assert "no Twilio accounts" in run_accounts(["list", "--team", TEAM], env).out
    for result in (added, listed, removed):
        assert TOKEN not in result.out + result.err


def test_the_stored_token_is_the_one_from_stdin(env: dict[str, str]) -> None:
    """The secret that reaches storage is exactly the first stdin line, encrypted."""
    assert _add(env, "--no-verify").code == 0

    async def read() -> str | None:
        db = await Database.connect(env["DATABASE_PATH"], secret_keys=OLD_KEY)
        try:
            found = await AccountStore(db).credentials(TEAM, "main")
        finally:
            await db.close()
        return None if found is None else found[1].secret

    assert asyncio.run(read()) == TOKEN


def test_list_shows_the_default_mark_and_masked_api_key(env: dict[str, str]) -> None:
    """The table marks the default and masks the API key SID."""
    _add(env, "--no-verify")
    argv = ["add", "--team", TEAM, "--label", "backup", "--sid", SID, "--api-key", KEY_SID, "--no-verify"]
    assert run_accounts([*argv, "--default"], env, stdin=API_SECRET).code == 0
    out = run_accounts(["list", "--team", TEAM], env).out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["LABEL", "DEFAULT", "ACCOUNT"]
    assert lines[1].split()[:2] == ["backup", "*"] and "SK55…5555" in lines[1]
    assert KEY_SID not in out and API_SECRET not in out


def test_remove_and_default_of_an_unknown_label_fail_in_plain_words(env: dict[str, str]) -> None:
    """An unknown label exits 1 with a sentence pointing at `accounts list`."""
    for command in ("remove", "default"):
        result = run_accounts([command, "--team", TEAM, "--label", "nope"], env)
        assert result.code == 1
        assert "has no account labelled 'nope'" in result.err and "accounts list" in result.err


async def test_add_verifies_with_twilio_before_storing(
    sim_env: tuple[TwilioSimulator, dict[str, str]],
) -> None:
    """With the right token the simulator confirms the account and it is stored."""
    sim, env = sim_env
    result = await asyncio.to_thread(_add, env)
    assert result.code == 0, result.err
    assert "checked with Twilio" in result.out and "Acme" in result.out
    assert any(SID in r.path for r in sim.requests)
    assert TOKEN not in result.out + result.err


async def test_add_with_api_key_verifies_with_the_key(
    sim_env: tuple[TwilioSimulator, dict[str, str]],
) -> None:
    """An API key SID and secret are verified and stored."""
    _, env = sim_env
    result = await asyncio.to_thread(_add, env, "--api-key", KEY_SID, token=API_SECRET)
    assert result.code == 0, result.err
    assert API_SECRET not in result.out + result.err
    assert "status callbacks for this account will be refused" in result.out


async def test_wrong_token_is_explained_and_nothing_is_stored(
    sim_env: tuple[TwilioSimulator, dict[str, str]],
) -> None:
    """Twilio's 401 becomes a plain sentence, exit 1, no account stored, token never echoed."""
    _, env = sim_env
    wrong = "00000000000000000000000000000000"
    result = await asyncio.to_thread(_add, env, token=wrong)
    assert result.code == 1
    assert "rejected these credentials" in result.err and "nothing was stored" in result.err
    assert "Traceback" not in result.err
    assert wrong not in result.out + result.err
    listed = await asyncio.to_thread(run_accounts, ["list", "--team", TEAM], env)
    assert "no Twilio accounts" in listed.out


def test_unreachable_twilio_is_explained_and_nothing_is_stored(env: dict[str, str]) -> None:
    """A Twilio URL nobody listens on gives a sentence suggesting --no-verify."""
    result = _add({**env, "TWILIO_API_URL": "http://127.0.0.1:9"})
    assert result.code == 1
    assert "--no-verify" in result.err and "nothing was stored" in result.err
    assert "no Twilio accounts" in run_accounts(["list", "--team", TEAM], env).out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list"], "--team"),
        (["add", "--team", TEAM, "--label", "main"], "--sid"),
        (["add", "--team", "not-a-team", "--label", "main", "--sid", SID], "not a Slack team ID"),
        (["add", "--team", TEAM, "--label", "main", "--sid", "AC123"], "--sid"),
        (["add", "--team", TEAM, "--label", "bad label!", "--sid", SID], "1 to 32 letters"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_usage_errors_are_one_sentence_and_exit_2(
    env: dict[str, str], argv: list[str], expected: str
) -> None:
    """Bad command lines exit 2 with a sentence on stderr, never a traceback or usage dump."""
    result = run_accounts(argv, env)
    assert result.code == 2
    assert expected in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert result.out == ""


def test_a_token_typed_as_an_argument_is_never_echoed(env: dict[str, str]) -> None:
    """Extra arguments (perhaps the token) are refused without repeating them."""
    result = run_accounts(["add", "--team", TEAM, "--label", "main", "--sid", SID, TOKEN], env)
    assert result.code == 2
    assert TOKEN not in result.err and "never from arguments" in result.err


def test_an_empty_stdin_is_a_usage_error(env: dict[str, str]) -> None:
    """No token on stdin exits 2 and explains how to give one."""
    result = _add(env, "--no-verify", token="")
    assert result.code == 2 and "No Twilio auth token" in result.err


def test_an_invalid_from_number_is_a_usage_error(env: dict[str, str]) -> None:
    """--from is checked as a phone number before anything is stored."""
    result = _add(env, "--no-verify", "--from", "not a number")
    assert result.code == 2 and "From" in result.err


def test_help_goes_to_stdout_and_exits_0(env: dict[str, str]) -> None:
    """--help prints usage on stdout and exits 0; no option takes the token."""
    result = run_accounts(["add", "--help"], env)
    assert result.code == 0 and "--sid" in result.out
    assert "--token" not in result.out and "--secret" not in result.out


def test_a_malformed_secret_key_is_a_sentence_without_the_key(env: dict[str, str]) -> None:
    """A bad SECRET_KEY exits 1 naming the variable, never echoing it."""
    result = run_accounts(["list", "--team", TEAM], {**env, "SECRET_KEY": "definitely-not-a-key"})
    assert result.code == 1
    assert "SECRET_KEY" in result.err and "definitely-not-a-key" not in result.err


def test_rotate_key_re_encrypts_with_the_newest_key(env: dict[str, str]) -> None:
    """rotate-key with `new,old` re-encrypts every secret; afterwards the new key alone works."""
    assert _add(env, "--no-verify").code == 0
    rotated = run_rotate({**env, "SECRET_KEY": f"{NEW_KEY},{OLD_KEY}"})
    assert rotated.code == 0, rotated.err
    assert "Re-encrypted 1 stored Twilio secret with the newest key" in rotated.out
    assert run_accounts(["list", "--team", TEAM], {**env, "SECRET_KEY": NEW_KEY}).code == 0

    async def read(key: str) -> str | None:
        db = await Database.connect(env["DATABASE_PATH"], secret_keys=key)
        try:
            found = await AccountStore(db).credentials(TEAM)
        finally:
            await db.close()
        return None if found is None else found[1].secret

    assert asyncio.run(read(NEW_KEY)) == TOKEN
    with pytest.raises(WrongKeyError):
        asyncio.run(read(OLD_KEY))


def test_rotate_key_without_the_old_key_fails_in_plain_words(env: dict[str, str]) -> None:
    """Rotating with only a new key exits 1 and says to keep the old key after it."""
    assert _add(env, "--no-verify").code == 0
    result = run_rotate({**env, "SECRET_KEY": NEW_KEY})
    assert result.code == 1
    assert "Put the old key after the new one in SECRET_KEY" in result.err


def test_an_unusable_database_path_is_a_sentence(env: dict[str, str], tmp_path: Path) -> None:
    """A DATABASE_PATH under a regular file exits 1 naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_accounts(["list", "--team", TEAM], {**env, "DATABASE_PATH": str(blocker / "bot.db")})
    assert result.code == 1
    assert "Cannot open the database" in result.err and "Traceback" not in result.err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_token_is_read_with_a_hidden_prompt(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a TTY on stdin, getpass asks (prompt on stderr) and stdin itself is not read."""
    prompts: list[str] = []

    def fake_getpass(prompt: str, stream: object = None) -> str:
        prompts.append(prompt)
        return TOKEN

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    out, err = io.StringIO(), io.StringIO()
    argv = ["add", "--team", TEAM, "--label", "main", "--sid", SID, "--no-verify"]
    code = main_accounts(argv, stdin=_Terminal("not this\n"), stdout=out, stderr=err, env=env)
    assert code == 0, err.getvalue()
    assert prompts == ["Twilio auth token (hidden): "]
    assert TOKEN not in out.getvalue() + err.getvalue()


async def test_add_with_api_key_takes_an_auth_token_for_webhooks(
    sim_env: tuple[TwilioSimulator, dict[str, str]],
) -> None:
    """--webhook-token reads the auth token from the next stdin line, checks it and stores it encrypted."""
    _, env = sim_env
    result = await asyncio.to_thread(_add, env, *KEYED_WITH_WEBHOOK_TOKEN, token=f"{API_SECRET}\n{TOKEN}")
    assert result.code == 0, result.err
    assert TOKEN not in result.out + result.err and API_SECRET not in result.out + result.err
    assert "will be refused" not in result.out

    db = await Database.connect(env["DATABASE_PATH"], secret_keys=OLD_KEY)
    try:
        found = await AccountStore(db).webhook_tokens(SID)
    finally:
        await db.close()
    assert found.tokens == (TOKEN,)


async def test_a_wrong_webhook_token_is_refused_and_nothing_stored(
    sim_env: tuple[TwilioSimulator, dict[str, str]],
) -> None:
    """A webhook token Twilio rejects exits 1 with a sentence; no account is stored."""
    _, env = sim_env
    result = await asyncio.to_thread(
        _add, env, *KEYED_WITH_WEBHOOK_TOKEN, token=f"{API_SECRET}\nnot-the-token-0000"
    )
    assert result.code == 1
    assert "auth token for webhooks" in result.err
    listed = await asyncio.to_thread(run_accounts, ["list", "--team", TEAM], env)
    assert "has no Twilio accounts yet" in listed.out + listed.err


def test_webhook_token_without_an_api_key_is_a_usage_error(env: dict[str, str]) -> None:
    """An account added with its auth token already checks webhooks with it: the flag is refused."""
    result = _add(env, "--webhook-token", "--no-verify", token=f"{TOKEN}\n{TOKEN}")
    assert result.code == 2
    assert "--webhook-token goes with --api-key" in result.err

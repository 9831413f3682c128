"""Bad input, generated: slash command text, modal submissions and button presses, mangled every way.

Through the real server, signed like Slack: never a 500, never a traceback anywhere a user could read it,
every rejection a sentence, and a rejected request leaves the database as it was.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from deliveries import TABLES, interaction, looks_like_a_traceback, row_counts
from harness import Stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signing import post
from stack_thread import StackThread
from waiting import until

from bot.core.commands import SUBCOMMANDS, CommandError, parse_command
from bot.sandbox.slack import ADMIN_ID, GENERAL_ID, TEAM_ID, escape_mrkdwn
from bot.sandbox.twilio import DEFAULT_SERVICE_SID, SANDBOX_ACCOUNT_SID
from bot.slack.cards import ACTION_CANCEL, ACTION_DELETE, ACTION_NEXT_PAGE, ACTION_REFRESH, ACTION_REOPEN
from bot.slack.modals import ACTION_ID

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
TO = "+15551234567"
SID = "SM" + "0123456789abcdef" * 2
_fresh = itertools.count(1)

# ── generators ──────────────────────────────────────────────────────────────────────────────────────

odd_characters = st.sampled_from(
    ["\x00", "\x1b[31m", "\u202e", "\ufeff", "\r\n", "\t", "𝔘𝔫𝔦", "😀", "ｓｅｎｄ"]
)
words = st.one_of(
    st.sampled_from(
        [
            TO,
            f"whatsapp:{TO}",
            "5551234567",
            "+1",
            "+99999999999999999999",
            "--from",
            "--to",
            "--account",
            "--limit",
            "--date",
            "--service",
            "--",
            "in",
            "30m",
            "2h",
            "99999d",
            "-5m",
            "2026-12-01T15:00:00Z",
            "2026-02-30",
            "scheduled",
            SID,
            DEFAULT_SERVICE_SID,
            "SM" + "g" * 32,
            "main",
            "<!channel>",
            "<@U0ADMIN>",
            "<#C0OPS|ops>",
            "&amp;",
            "off",
            "0",
            "1001",
            "-1",
        ]
    ),
    odd_characters,
    st.text(max_size=20),
    st.integers(-(10**12), 10**12).map(str),
)
slash_texts = st.one_of(
    st.builds(
        lambda sub, rest: " ".join([sub, *rest]),
        st.sampled_from([*SUBCOMMANDS, "", "SEND", "frobnicate"]),
        st.lists(words, max_size=8),
    ),
    st.text(max_size=200),
    st.text(min_size=1, max_size=3).map(lambda chunk: f"send {TO} " + chunk * 1500),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    odd_characters,
    st.text(min_size=1, max_size=3).map(lambda chunk: chunk * 1500),  # huge (beyond Block Kit limits)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)


def all_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path inside a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from all_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from all_paths(value, (*prefix, index))


INTERESTING = ("view", "user", "team", "actions", "container", "channel", "message", "response_url")


class Mangled:
    """A payload with its changes; its repr lists only the changes, so a failing example reads well."""

    def __init__(self, payload: dict[str, Any], changes: list[str]) -> None:
        self.payload = payload
        self.changes = changes

    def __repr__(self) -> str:
        return f"Mangled({self.payload.get('type')!r}, changes={self.changes!r})"[:2000]


@st.composite
def mangled(draw: st.DrawFn, base: dict[str, Any]) -> Mangled:
    """`base` with one to three changes: a key removed, a value of another type, odd text in a string."""
    doc = copy.deepcopy(base)
    changes: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        paths = list(all_paths(doc))
        near = [p for p in paths if p[0] in INTERESTING and (p[0] != "view" or p[1:2] != ("blocks",))]
        path = draw(st.sampled_from(near or paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        action = draw(st.sampled_from(["delete", "replace", "text"]))
        if action == "delete":
            del parent[key]
        elif action == "replace" or not isinstance(parent[key], str):
            parent[key] = draw(json_values)
        else:
            start = draw(st.sampled_from(["", parent[key][:100] * 30]))
            parent[key] = start + draw(odd_characters | st.text(max_size=20))
        shown = "<deleted>" if action == "delete" else repr(parent[key])
        changes.append(f"{action} {'/'.join(map(str, path))}: {shown[:80]}")
    return Mangled(doc, changes)


# ── what must hold for every request ────────────────────────────────────────────────────────────────


def is_sentence(text: object) -> bool:
    """One or more plain sentences: starts like one, ends like one, no Python internals."""
    if not isinstance(text, str) or not text.strip() or looks_like_a_traceback(text):
        return False
    first, last = text.strip()[0], text.strip()[-1]
    return not first.islower() and last in ".!?)`'\"”"


class Watch:
    """What one example changed: Slack calls and ephemerals after it started, Twilio requests, rows."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.calls = len(stack.slack.calls)
        self.ephemerals = len(stack.slack.ephemerals)
        self.requests = len(stack.twilio.requests)
        self.rows: dict[str, int] = {}

    async def start(self) -> Watch:
        self.rows = await row_counts(self.stack)
        return self

    def shown(self) -> str:
        new_calls = self.stack.slack.calls[self.calls :]
        new_ephemerals = self.stack.slack.ephemerals[self.ephemerals :]
        return "\n".join(
            [json.dumps(c.args, ensure_ascii=False) for c in new_calls]
            + [json.dumps(e, ensure_ascii=False) for e in new_ephemerals]
        )

    def twilio_calls(self) -> int:
        return len(self.stack.twilio.requests) - self.requests

    async def check(self, status: int, body: str, *, rejected: bool) -> None:
        await self.stack.settle()
        assert status < 500, f"HTTP {status}: {body[:300]}"
        assert not looks_like_a_traceback(body)
        assert not looks_like_a_traceback(self.shown())
        if status >= 400:
            assert is_sentence(json.loads(body).get("error")), body
        answer = json.loads(body) if body.strip().startswith("{") else {}
        if isinstance(answer, dict) and answer.get("response_action") == "errors":
            rejected = True
            assert answer["errors"], body
            assert all(is_sentence(message) for message in answer["errors"].values()), body
        if rejected or status >= 400 or self.twilio_calls() == 0:
            # Nothing was asked of Twilio (or the request was turned away): nothing may have changed.
            assert await row_counts(self.stack) == self.rows, f"{TABLES} changed by a rejected request"
        if rejected or status >= 400:
            assert not [r for r in self.stack.twilio.requests[self.requests :] if r.method == "POST"]


# ── slash commands ──────────────────────────────────────────────────────────────────────────────────


def test_slash_commands_of_any_text(tmp_path: Path) -> None:
    """Generated `/twilio …` text: a warning sentence with usage, or a normal run; never a 500."""
    with StackThread(tmp_path / "bot.db", twilio_backoff_base=0.001, twilio_timeout=2.0) as running:

        @SETTINGS
        @given(text=slash_texts)
        def check(text: str) -> None:
            running.run(lambda stack: one_command(stack, text))

        check()


async def one_command(stack: Stack, text: str) -> None:
    watch = await Watch(stack).start()
    response = await stack.slack.slash_command(text)
    assert response.error is None, response.error
    try:
        parse_command(escape_mrkdwn(text), now=stack.runtime.deps.clock(), default_region="US")
        rejected = False
    except CommandError:
        rejected = True
    if rejected:
        answer = response.json()
        ack = str(answer.get("text", "")) if isinstance(answer, dict) else response.body
        assert ack.startswith(":warning: "), ack
        assert is_sentence(ack.removeprefix(":warning: ").split("\nUsage:")[0]), ack
        assert "\nUsage: `" in ack
    await watch.check(response.status, response.body, rejected=rejected)


# ── modal submissions ───────────────────────────────────────────────────────────────────────────────

FILLED = {
    "account": {"selected_option": {"value": "main", "text": {"type": "plain_text", "text": "main"}}},
    "to": {"value": TO},
    "from": {"value": None},
    "body": {"value": "hello from a form"},
    "service": {"value": DEFAULT_SERVICE_SID},
    "send_at": {"selected_date_time": 1_900_000_000},
    "date": {"selected_date": "2026-11-26"},
    "limit": {"value": "20"},
    "sid": {"value": SID},
    "label": {"value": "other"},
    "account_sid": {"value": SANDBOX_ACCOUNT_SID},
    "auth_token": {"value": "not-the-right-token"},
}


async def open_forms(stack: Stack) -> list[dict[str, Any]]:
    """Every form the bot opens, as Slack would send it back on submit (filled in)."""
    commands = ("send", "schedule", "fetch", "cancel", "delete", "setup")
    for count, text in enumerate(commands, start=1):
        await stack.command(text)
        # The form opens after the ack (setup's only after the admin check): wait for Slack's record.
        await until(lambda n=count: len(stack.slack.calls_to("views.open")) >= n, what=f"the {text} form")
    payloads = []
    for call in stack.slack.calls_to("views.open"):
        view = copy.deepcopy(call.response["view"])
        values = {}
        for block in view["blocks"]:
            if block.get("type") == "input":
                state = FILLED.get(block["block_id"], {"value": None})
                values[block["block_id"]] = {ACTION_ID: {"type": block["element"]["type"], **state}}
        view["state"] = {"values": values}
        payloads.append(
            {
                "type": "view_submission",
                "team": {"id": TEAM_ID, "domain": "playground"},
                "user": {"id": ADMIN_ID, "team_id": TEAM_ID, "name": "ada"},
                "api_app_id": "A0PLAYGRND",
                "trigger_id": "1.2.3",
                "view": view,
                "response_urls": [],
            }
        )
    return payloads


def test_modal_submissions_mangled(tmp_path: Path) -> None:
    """Real forms' submissions with fields removed, retyped, huge or full of odd characters."""
    with StackThread(tmp_path / "bot.db", twilio_backoff_base=0.001, twilio_timeout=2.0) as running:
        forms = running.run(open_forms)
        assert {f["view"]["callback_id"] for f in forms} >= {"twilio_send", "twilio_setup"}

        @SETTINGS
        @given(case=st.sampled_from(forms).flatmap(mangled))
        def check(case: Mangled) -> None:
            running.run(lambda stack: one_interaction(stack, case.payload))

        check()


async def one_interaction(stack: Stack, payload: dict[str, Any]) -> None:
    payload = copy.deepcopy(payload)
    n = next(_fresh)
    if isinstance(payload.get("view"), dict) and isinstance(payload["view"].get("id"), str):
        payload["view"]["id"] = f"V{n:09d}"  # a new form each time, as Slack would have it
    if isinstance(payload.get("trigger_id"), str):
        payload["trigger_id"] = f"{n}.2.3"
    watch = await Watch(stack).start()
    status, body = await post(stack.bot_url, interaction(payload), secret=stack.signing_secret)
    await watch.check(status, body, rejected=False)


# ── button presses ──────────────────────────────────────────────────────────────────────────────────


async def press_every_button(stack: Stack) -> list[dict[str, Any]]:
    """Payloads of every kind of card button, as Slack delivered them."""
    await stack.command(f"send {TO} one")
    await stack.command(f"send {TO} two")
    await stack.command(f"schedule {TO} in 2h later")
    await stack.command("list --limit 1")
    await stack.command("send +15005550001 rejected")  # an error card with "Edit and try again"
    wanted = {ACTION_REFRESH, ACTION_CANCEL, ACTION_DELETE, ACTION_NEXT_PAGE, ACTION_REOPEN}
    messages = stack.slack.messages(GENERAL_ID) + [e for e in stack.slack.ephemerals if e.get("blocks")]
    for message in messages:
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") in wanted:
                    wanted.discard(element["action_id"])
                    await stack.slack.click(GENERAL_ID, message["ts"], element["action_id"])
    await stack.settle()
    assert not wanted, f"no button {wanted} found"
    return [d.payload for d in stack.slack.deliveries if d.kind == "block_actions"]


def test_button_presses_mangled(tmp_path: Path) -> None:
    """Real button presses with values, containers, users and teams removed, retyped or mangled."""
    with StackThread(tmp_path / "bot.db", twilio_backoff_base=0.001, twilio_timeout=2.0) as running:
        presses = running.run(press_every_button)

        @SETTINGS
        @given(case=st.sampled_from(presses).flatmap(mangled))
        def check(case: Mangled) -> None:
            running.run(lambda stack: one_interaction(stack, case.payload))

        check()


# ── not even JSON ───────────────────────────────────────────────────────────────────────────────────

garbage_payloads = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    st.sampled_from(
        ["{", "[]", "null", "1e999", '{"type": null}', '{"type": "view_submission"}', "[" * 5000]
    ),
)


def test_garbage_in_payload_and_bodies(tmp_path: Path) -> None:
    """`payload=` that is not a payload, and bodies that are neither form nor JSON: 400/404 in words."""
    with StackThread(tmp_path / "bot.db") as running:

        @SETTINGS
        @given(
            raw=garbage_payloads,
            as_json=st.booleans(),
            form=st.dictionaries(st.text(max_size=10), st.text(max_size=50), max_size=4),
        )
        def check(raw: str, as_json: bool, form: dict[str, str]) -> None:
            running.run(lambda stack: one_garbage(stack, raw, as_json, form))

        check()


async def one_garbage(stack: Stack, raw: str, as_json: bool, form: dict[str, str]) -> None:
    watch = await Watch(stack).start()
    if as_json:
        status, body = await post(
            stack.bot_url, raw.encode("utf-8"), secret=stack.signing_secret, content_type="application/json"
        )
    else:
        status, body = await post(
            stack.bot_url, urlencode({**form, "payload": raw}).encode(), secret=stack.signing_secret
        )
    await watch.check(status, body, rejected=True)

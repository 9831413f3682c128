"""The Slack app manifest and the Dockerfile say what the design says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.core.commands import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[1]
TWILIO_SUBCOMMANDS = ("send", "schedule", "list", "fetch", "cancel", "delete")
# Each subscribed event and the Bolt event type a listener takes it under.
EVENTS = {
    "message.channels": "message",
    "message.groups": "message",
    "app_home_opened": "app_home_opened",
    "app_uninstalled": "app_uninstalled",
    "tokens_revoked": "tokens_revoked",
}

_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*):(?:\s+(.*))?$")


def _scalar(text: str) -> Any:
    """A YAML scalar of the kinds the manifest uses: quoted or plain text, booleans, integers."""
    if text[:1] == '"':
        return json.loads(text)
    if text[:1] == "'":
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def tiny_yaml(text: str) -> Any:
    """Parse the block-style YAML subset the manifest is written in (no PyYAML in the dev deps).

    Mappings, lists of scalars or mappings, full-line comments, quoted and plain scalars. Anything
    else (flow style, anchors, multi-line scalars) raises, so the manifest stays in this subset.
    """
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError(f"tab indentation: {raw!r}")
        lines.append((len(raw) - len(raw.lstrip()), stripped))

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- "):
            return sequence(i, indent)
        return mapping(i, indent)

    def mapping(i: int, indent: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
            match = _KEY.match(lines[i][1])
            if match is None or match.group(1) in out:
                raise ValueError(f"not a new mapping key: {lines[i][1]!r}")
            key, rest = match.group(1), match.group(2)
            if rest and rest[:1] in "[{&*|>!":
                raise ValueError(f"unsupported YAML in {lines[i][1]!r}")
            i += 1
            if rest:
                out[key] = _scalar(rest)
            elif i < len(lines) and lines[i][0] > indent:
                out[key], i = block(i, lines[i][0])
            elif i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                out[key], i = sequence(i, indent)
            else:
                out[key] = None
        if i < len(lines) and lines[i][0] > indent:
            raise ValueError(f"bad indentation at {lines[i][1]!r}")
        return out, i

    def sequence(i: int, indent: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            item = lines[i][1][2:].strip()
            if _KEY.match(item):
                lines[i] = (indent + 2, item)
                value, i = mapping(i, indent + 2)
                out.append(value)
            else:
                out.append(_scalar(item))
                i += 1
        return out, i

    if not lines:
        return None
    value, end = block(0, lines[0][0])
    if end != len(lines):
        raise ValueError(f"unparsed line: {lines[end][1]!r}")
    return value


def load_manifest() -> dict[str, Any]:
    """manifest.yml, parsed with PyYAML when it is installed, else with tiny_yaml."""
    text = (ROOT / "manifest.yml").read_text(encoding="utf-8")
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        data = tiny_yaml(text)
    else:
        data = yaml.safe_load(text)
        assert data == tiny_yaml(text), "the manifest left the YAML subset tiny_yaml reads"
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    """The parsed Slack app manifest."""
    return load_manifest()


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def instructions(dockerfile: list[str], name: str) -> list[str]:
    """The arguments of every `name` instruction."""
    return [line.split(None, 1)[1] for line in dockerfile if line.split(None, 1)[0].upper() == name]


# ── the tiny parser itself ───────────────────────────────────────────────────────────────────────────


def test_tiny_yaml_reads_the_subset() -> None:
    """Nested mappings, lists of scalars and of mappings, quotes and booleans."""
    text = """
# comment
a:
  b: plain text: with colon
  c: "#quoted"
  d:
    - x:y
    - 'it''s'
  e:
    - k: v
      n: 3
    - k: w
  f: false
"""
    assert tiny_yaml(text) == {
        "a": {
            "b": "plain text: with colon",
            "c": "#quoted",
            "d": ["x:y", "it's"],
            "e": [{"k": "v", "n": 3}, {"k": "w"}],
            "f": False,
        }
    }


@pytest.mark.parametrize("text", ["a: [1, 2]", "a: >-\n  folded", "a: 1\na: 2", "a:\n  b: 1\n c: 2"])
def test_tiny_yaml_refuses_what_it_does_not_know(text: str) -> None:
    """Flow style, folded scalars, duplicate keys and bad indentation are refused, not misread."""
    with pytest.raises(ValueError):
        tiny_yaml(text)


# ── manifest ─────────────────────────────────────────────────────────────────────────────────────────


def test_manifest_names_the_app(manifest: dict[str, Any]) -> None:
    """Display name, description within Slack's 140 characters, and a bot user."""
    info = manifest["display_information"]
    assert info["name"] == "Twilio Bridge"
    assert 1 <= len(info["description"]) <= 140
    assert manifest["features"]["bot_user"]["display_name"]


def test_manifest_has_the_scopes_the_bot_asks_for(manifest: dict[str, Any]) -> None:
    """The manifest's bot scopes are the ones OAuth mode asks for, in the same order, each once."""
    from bot.slack.oauth import BOT_SCOPES

    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert scopes == list(BOT_SCOPES)
    assert len(set(scopes)) == len(scopes)


def test_manifest_has_one_twilio_command(manifest: dict[str, Any]) -> None:
    """One /twilio command, posted to /slack/events, unescaped, whose hint names every Twilio subcommand."""
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/twilio"]
    command = commands[0]
    assert command["url"].startswith("https://")
    assert command["url"].endswith("/slack/events")
    assert command["should_escape"] is True  # log-channel needs channel IDs
    assert 1 <= len(command["description"]) <= 100
    words = set(re.findall(r"[a-z-]+", command["usage_hint"]))
    for sub in TWILIO_SUBCOMMANDS:
        assert sub in SUBCOMMANDS
        assert sub in words, f"usage_hint does not mention {sub}"


def test_manifest_enables_interactivity(manifest: dict[str, Any]) -> None:
    """Buttons and modals reach the same /slack/events route; HTTP mode by default."""
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False


def test_manifest_subscribes_to_the_events_the_listeners_take(manifest: dict[str, Any]) -> None:
    """The subscribed events go to /slack/events, and the app has a listener for each of them."""
    from slack_bolt.async_app import AsyncApp

    from bot.slack import events, home, lifecycle

    subscriptions = manifest["settings"]["event_subscriptions"]
    assert subscriptions["request_url"].endswith("/slack/events")
    assert set(subscriptions["bot_events"]) == set(EVENTS)
    app = AsyncApp(token="xoxb-test", signing_secret="unused")
    for module in (events, home, lifecycle):
        module.register(app, deps=None)  # type: ignore[arg-type]  # registering reads no dependency
    listeners = app._async_listeners  # Bolt keeps no public list of them
    for kind in set(EVENTS.values()):
        assert any(_listens_to(listener, kind) for listener in listeners), f"no listener for {kind}"


def _listens_to(listener: Any, kind: str) -> bool:
    """Whether a Bolt listener's matchers accept an event of type `kind` (as Slack would send it)."""
    from slack_bolt.request.async_request import AsyncBoltRequest

    body = {"type": "event_callback", "team_id": "T1", "event": {"type": kind, "channel": "C1"}}
    request = AsyncBoltRequest(body=json.dumps(body), mode="socket_mode")
    return all(await_free_match(matcher, request) for matcher in listener.matchers)


def await_free_match(matcher: Any, request: Any) -> bool:
    """Run an async Bolt matcher to completion (it does no I/O)."""
    import asyncio

    return bool(asyncio.run(matcher.async_matches(request, None)))


def test_manifest_subscribes_to_exactly_the_events_the_bot_listens_to(manifest: dict[str, Any]) -> None:
    """bot_events are the events with a listener under bot/slack (message.* under `message`)."""
    listened = {
        name
        for path in (ROOT / "bot" / "slack").rglob("*.py")
        for name in re.findall(r"@app\.event\(\"([a-z_]+)\"\)", path.read_text(encoding="utf-8"))
    }
    subscriptions = manifest["settings"]["event_subscriptions"]
    assert {"app_home_opened", "app_uninstalled", "tokens_revoked"} <= listened
    assert {EVENTS.get(name, name) for name in subscriptions["bot_events"]} == listened
    assert subscriptions["request_url"].endswith("/slack/events")


def test_manifest_has_the_oauth_redirect_and_the_home_tab(manifest: dict[str, Any]) -> None:
    """The redirect URL is the bot's /slack/oauth_redirect; the Home tab is on."""
    from bot.slack.oauth import REDIRECT_PATH

    (redirect,) = manifest["oauth_config"]["redirect_urls"]
    assert redirect.startswith("https://") and redirect.endswith(REDIRECT_PATH)
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_readme_lists_the_scopes_oauth_mode_asks_for(manifest: dict[str, Any]) -> None:
    """The "Serve many workspaces" table names exactly the manifest's bot scopes, in its order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(
        line for line in readme.splitlines() if line.startswith("| OAuth & Permissions | Bot Token Scopes")
    )
    assert re.findall(r"`([^`]+)`", row) == manifest["oauth_config"]["scopes"]["bot"]


def test_manifest_explains_socket_mode() -> None:
    """The comment beside socket_mode_enabled says how to switch."""
    text = (ROOT / "manifest.yml").read_text(encoding="utf-8")
    for needle in ("connections:write", "SLACK_APP_TOKEN", "python -m bot socket"):
        assert needle in text


# ── Dockerfile ───────────────────────────────────────────────────────────────────────────────────────


def test_dockerfile_base_and_layers(dockerfile: list[str]) -> None:
    """python:3.11-slim, dependencies installed before the source is copied, the package without deps."""
    assert instructions(dockerfile, "FROM") == ["python:3.11-slim"]
    copies = [i for i, line in enumerate(dockerfile) if line.upper().startswith("COPY")]
    deps = next(i for i, line in enumerate(dockerfile) if "pip install -r" in line)
    source = next(i for i, line in enumerate(dockerfile) if re.match(r"COPY\s+bot\b", line))
    assert dockerfile[copies[0]].split()[1] == "pyproject.toml"
    assert copies[0] < deps < source
    assert any("pip install --no-deps ." in line for line in dockerfile[source:])


def test_dockerfile_runs_as_non_root(dockerfile: list[str]) -> None:
    """The last USER is not root."""
    users = instructions(dockerfile, "USER")
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_exec_form_entrypoint(dockerfile: list[str]) -> None:
    """ENTRYPOINT and CMD are JSON arrays: signals reach the bot, not a shell."""
    assert json.loads(instructions(dockerfile, "ENTRYPOINT")[-1]) == ["python", "-m", "bot"]
    assert json.loads(instructions(dockerfile, "CMD")[-1]) == ["serve"]


def test_dockerfile_healthcheck_uses_python(dockerfile: list[str]) -> None:
    """The health check asks /healthz with Python's urllib (slim has no curl)."""
    (check,) = instructions(dockerfile, "HEALTHCHECK")
    command = json.loads(check.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "urllib" in command[2] and "/healthz" in command[2]
    compile(command[2], "<healthcheck>", "exec")


def test_dockerfile_data_volume_and_port(dockerfile: list[str]) -> None:
    """The database lives on the /data volume; the server listens on 3000."""
    env = " ".join(instructions(dockerfile, "ENV"))
    assert "DATABASE_PATH=/data/bot.db" in env
    assert instructions(dockerfile, "VOLUME") == ["/data"]
    assert instructions(dockerfile, "EXPOSE") == ["3000"]


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    """The build context leaves out the environment file, databases, keys, the venv and git."""
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", "*.db", "*.key", "data"} <= ignored

"""Imports point down the layers: doors use services, services know no Slack, storage knows no bot."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _runtime_imports(path: Path) -> Iterator[str]:
    """Every module `path` imports at run time (imports under `if TYPE_CHECKING:` are left out)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def _modules(*parts: str) -> list[Path]:
    base = ROOT.joinpath(*parts)
    return sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]


def _bad(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in paths
        for name in _runtime_imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


_NO_SLACK = ("slack_sdk", "slack_bolt", "bot.slack")
LAYERS = [
    # The Slack door sees services, never the stores or the Twilio client they are built from.
    pytest.param(("bot", "slack"), ("storage", "bot.twilio.client"), id="bot/slack"),
    # The services import nothing of Slack.
    pytest.param(("bot", "operations"), _NO_SLACK, id="bot/operations"),
    pytest.param(("bot", "workspace"), _NO_SLACK, id="bot/workspace"),
    pytest.param(("bot", "services"), _NO_SLACK, id="bot/services"),
    pytest.param(("bot", "status"), (*_NO_SLACK, "aiohttp", "bot.twilio.client"), id="bot/status"),
    # The Twilio door, like the Slack one, sees services only.
    pytest.param(("bot", "webhooks"), (*_NO_SLACK, "storage", "bot.twilio.client"), id="bot/webhooks"),
    pytest.param(("bot", "installs"), _NO_SLACK, id="bot/installs"),
    pytest.param(("bot", "home"), _NO_SLACK, id="bot/home"),
    # Pure rules: nothing of ours outside bot.core, and no I/O libraries.
    pytest.param(
        ("bot", "core"), ("storage", "bot.slack", "bot.twilio", "bot.operations", "aiohttp"), id="bot/core"
    ),
    # Storage knows nothing of the bot.
    pytest.param(("storage",), ("bot",), id="storage"),
]


@pytest.mark.parametrize(("layer", "forbidden"), LAYERS)
def test_a_layer_imports_nothing_above_it(layer: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    """No module of the layer imports the forbidden ones at run time (type-only imports are allowed)."""
    assert _bad(_modules(*layer), forbidden) == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The checker finds a run-time import and ignores one under TYPE_CHECKING."""
    module = tmp_path / "door.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from storage.outbox import Outbox\n"
        "if TYPE_CHECKING:\n    from storage.accounts import StoredAccount\n"
    )
    assert list(_runtime_imports(module)) == ["typing", "storage.outbox"]

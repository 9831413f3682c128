"""The README and docs/ point only at files in the repository, and name modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PATH = re.compile(r"`((?:bot|storage|tests|docs)/[A-Za-z0-9_./]+\.(?:py|md))`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_is_a_file_in_the_repository(page: Path) -> None:
    """Relative links resolve to files inside the repository; none leads out of it."""
    for target in _LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        resolved = (page.parent / target.split("#", 1)[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        assert resolved.exists(), f"{page.name} links to a missing file: {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_module_a_page_names_exists(page: Path) -> None:
    """A `bot/…py` or `docs/…md` path named in backquotes is a file in the repository."""
    text = page.read_text()
    assert "../shared" not in text, f"{page.name} points into a folder that is not in the repository"
    for path in _PATH.findall(text):
        assert (ROOT / path).exists(), f"{page.name} names {path}, which does not exist"

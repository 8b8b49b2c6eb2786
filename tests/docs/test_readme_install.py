"""What the README tells a newcomer about installing, and the sample files the docs use."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = [
    "README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")),
]
SHELL = re.compile(r"^```(?:sh|bash|console)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def text_of(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def section_of(text: str, page: str = "README.md") -> str:
    """The section of ``page`` (from its ## heading to the next) that holds ``text``."""
    whole = text_of(page)
    at = whole.index(text)
    start = whole.rfind("\n## ", 0, at)
    end = whole.find("\n## ", at)
    return whole[start : end if end >= 0 else len(whole)]


def test_readme_never_offers_a_pip_install_of_an_unpublished_name() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "bulksim"
    for page in PAGES:
        for block in SHELL.findall(text_of(page)):
            assert not re.search(r"pip install\s+bulksim\b", block), page
    assert "not published on PyPI" in README
    install = section_of("### Install")
    assert "pip install .  " in install
    assert 'pip install "git+https://github.com/<owner>/bulksim.git"' in install
    assert "placeholder" in install


@pytest.mark.parametrize("page", PAGES)
def test_fixture_paths_exist_in_the_repository(page: str) -> None:
    for path in sorted(set(re.findall(r"fixtures/[\w./-]+\.\w+", text_of(page)))):
        assert (ROOT / path).is_file(), f"{page} uses {path}, which does not exist"


def test_the_docs_name_sample_files() -> None:
    assert any(re.search(r"fixtures/[\w./-]+\.\w+", text_of(page)) for page in PAGES)


def test_walkthroughs_using_fixtures_say_they_run_from_a_clone() -> None:
    users = [
        (page, block)
        for page in PAGES
        for block in SHELL.findall(text_of(page))
        if "fixtures/" in block
    ]
    assert users
    for page, block in users:
        assert "from the root of a clone" in section_of(block, page), page
    assert "not part of the installed\npackage" in section_of("### Install")

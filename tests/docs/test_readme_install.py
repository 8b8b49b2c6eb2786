"""What the README tells a newcomer about installing, and the sample files it uses."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(?:sh|bash|console)\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)


def section_of(text: str) -> str:
    """The README section (from its ## heading to the next) that holds ``text``."""
    at = README.index(text)
    start = README.rfind("\n## ", 0, at)
    end = README.find("\n## ", at)
    return README[start : end if end >= 0 else len(README)]


def test_readme_never_offers_a_pip_install_of_an_unpublished_name() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "bulksim"
    for block in BLOCKS:
        assert not re.search(r"pip install\s+bulksim\b", block)
    assert "not published on PyPI" in README
    install = section_of("### Install")
    assert "pip install .  " in install
    assert 'pip install "git+https://github.com/<owner>/bulksim.git"' in install
    assert "placeholder" in install


def test_readme_fixture_paths_exist_in_the_repository() -> None:
    paths = set(re.findall(r"fixtures/[\w./-]+\.\w+", README))
    assert paths, "the README names no sample file"
    for path in sorted(paths):
        assert (ROOT / path).is_file(), f"the README uses {path}, which does not exist"


def test_readme_says_walkthroughs_using_fixtures_run_from_a_clone() -> None:
    users = [block for block in BLOCKS if "fixtures/" in block]
    assert users
    for block in users:
        assert "from the root of a clone" in section_of(block)
    assert "not part of the installed\npackage" in section_of("### Install")

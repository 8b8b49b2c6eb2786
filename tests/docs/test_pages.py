"""Each documentation page reads on its own, and every link between the pages lands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))
PAGES = ["README.md", "ARCHITECTURE.md", *DOCS]
FENCE = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def prose_of(path: Path) -> str:
    """The page without its fenced blocks (a `# comment` in a shell block is no heading)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def anchors_of(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose_of(path), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_the_docs_pages_are_the_manuals() -> None:
    assert DOCS == [
        "docs/benchmarks.md",
        "docs/control-plane.md",
        "docs/dashboard.md",
        "docs/harness.md",
        "docs/providers/check.md",
        "docs/providers/deepvue.md",
        "docs/providers/helloatlas.md",
        "docs/providers/passcreator.md",
    ]


@pytest.mark.parametrize("page", DOCS)
def test_a_docs_page_opens_with_a_heading_a_summary_and_the_way_back(page: str) -> None:
    title, blank, *rest = (ROOT / page).read_text(encoding="utf-8").split("\n")
    assert title.startswith("# ")
    assert blank == ""
    summary = "\n".join(rest).split("\n\n")[0]
    back = Path(page).parent.as_posix().count("/") + 1
    assert f"[README]({'../' * back}README.md)" in summary, summary


def test_the_readme_links_every_docs_page() -> None:
    links = set(LINK.findall(prose_of(ROOT / "README.md")))
    for page in DOCS:
        assert page in links, f"the README does not link {page}"


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_lands_on_a_file_and_a_heading(page: str) -> None:
    source = ROOT / page
    for target in LINK.findall(prose_of(source)):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked here
        path, _, anchor = target.partition("#")
        landing = (source.parent / path).resolve() if path else source
        assert landing.is_file(), f"{page}: {target} names no file"
        if anchor:
            assert anchor in anchors_of(landing), f"{page}: {target} names no heading"

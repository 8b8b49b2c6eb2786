"""The README shows these examples verbatim, so what it shows is what runs."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("example", ["test_fuzz_my_client.py", "test_my_client.py"])
def test_readme_example_is_the_tested_file(example: str) -> None:
    shown = (ROOT / "tests" / "examples" / example).read_text(encoding="utf-8")
    assert shown.strip() in (ROOT / "README.md").read_text(encoding="utf-8")

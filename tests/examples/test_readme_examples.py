"""The README shows these examples verbatim, so what it shows is what runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_fuzzing_example_is_the_tested_file() -> None:
    example = (ROOT / "tests" / "examples" / "test_fuzz_my_client.py").read_text(encoding="utf-8")
    assert example.strip() in (ROOT / "README.md").read_text(encoding="utf-8")

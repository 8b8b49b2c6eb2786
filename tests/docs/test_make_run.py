"""`make run` serves on the port the README says, and on another one when asked."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def run_command(*args: str) -> str:
    """The command `make run` would run (make -n prints it without running anything)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in result.stdout.splitlines() if "bulksim serve" in line]
    assert len(lines) == 1, result.stdout
    return lines[0]


def test_make_run_without_port_serves_on_the_default_port() -> None:
    assert run_command().split()[-3:] == ["serve", "--seed", "0"]


def test_make_run_with_port_passes_it_to_bulksim_serve() -> None:
    assert run_command("PORT=8800").split()[-5:] == ["serve", "--seed", "0", "--port", "8800"]


def test_readme_says_how_to_change_the_port() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run PORT=8800" in readme

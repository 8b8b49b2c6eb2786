"""Each distinct ``bulksim_settings`` is served by its own simulator, never by another's."""

from __future__ import annotations

import pytest

CONFTEST = """
import pytest

from simulator.clock import parse_iso
from simulator.settings import Settings


@pytest.fixture(scope="session")
def bulksim_settings():
    return Settings(
        clock="manual",
        start=parse_iso("{start}"),
        options=(("deepvue.processing_seconds", "{seconds}"),),
    )
"""

TEST = """
def test_the_server_serves_my_settings(bulksim_server):
    options = bulksim_server.http.get("/_sim/options").json()
    assert options["deepvue"]["processing_seconds"] == {seconds}
    assert bulksim_server.clock.now().isoformat() == "{start}".replace("Z", "+00:00")


def test_the_in_process_simulator_too(bulksim_app):
    options = bulksim_app.http.get("/_sim/options").json()
    assert options["deepvue"]["processing_seconds"] == {seconds}
"""


def test_two_directories_with_different_settings_each_get_their_own_server(
    pytester: pytest.Pytester,
) -> None:
    for name, start, seconds in (
        ("fast", "2030-01-01T00:00:00Z", 5),
        ("slow", "2031-06-01T12:00:00Z", 900),
    ):
        directory = pytester.mkpydir(name)
        values = {"start": start, "seconds": seconds}
        (directory / "conftest.py").write_text(CONFTEST.format(**values), encoding="utf-8")
        (directory / f"test_{name}.py").write_text(TEST.format(**values), encoding="utf-8")
    (pytester.path / "test_defaults.py").write_text(
        TEST.format(start="2026-03-09T08:14:08Z", seconds=30.0), encoding="utf-8"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)

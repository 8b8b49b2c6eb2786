"""The harness's journal cap survives a settings override, and a cut-off answer is reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contracts.checks import ClientNotConformant
from contracts.harness import Simulator, default_settings, in_process
from contracts.suites.check import SPACE
from tests.contracts.test_check_client import IgnoresHasMore

ROOT = Path(__file__).resolve().parents[2]
# 100 claims (a file's most) read 99 a page: the first page is about 37 KB, more than the
# 16 KiB of each body the simulator's own defaults keep in the journal.
CSV = SPACE.render([f"Claim number {n} is about the colour of the sky." for n in range(100)])


def stop_after_the_first_page(sim: Simulator) -> None:
    client = IgnoresHasMore(
        sim.client("check"),
        sim.credentials("check")["api_key"],
        sleep=sim.clock.sleep,
        now=sim.clock.seconds,
        page_size=99,
    )
    assert len(sim.run_client(client.verify, CSV)) == 99


def test_the_harness_cap_sees_a_whole_page_and_the_missed_pages() -> None:
    with in_process(default_settings(seed=3)) as sim:
        stop_after_the_first_page(sim)
        (page,) = sim.journal.entries(operation="get_batch_results")
        assert int(page["response"]["headers"]["content-length"]) > 32 * 1024
        with pytest.raises(ClientNotConformant, match=r"stopped-paging: stopped paging batch_"):
            sim.assert_client_conformant()


def test_a_page_the_journal_cut_off_is_reported_not_passed() -> None:
    with in_process(default_settings(journal_body_bytes=16 * 1024)) as sim:
        stop_after_the_first_page(sim)
        (page,) = sim.journal.entries(operation="get_batch_results")
        with pytest.raises(ClientNotConformant) as raised:
            sim.assert_client_conformant()
    (finding,) = raised.value.findings
    assert finding.check == "cut-off-body"
    assert finding.seq == page["seq"]
    assert "stopped-paging cannot judge it" in finding.message
    assert "journal_body_bytes" in finding.message


def test_the_harness_manual_conftest_keeps_the_harness_defaults(
    pytester: pytest.Pytester,
) -> None:
    manual = (ROOT / "docs" / "harness.md").read_text(encoding="utf-8")
    (recipe,) = re.findall(r"```python\n(# conftest.py\n.*?)```", manual, re.DOTALL)
    pytester.makeconftest(recipe)
    pytester.makepyfile(
        test_recipe="""
def test_the_settings_reach_the_simulator(bulksim_app):
    settings = bulksim_app.state.settings
    assert (settings.clock, settings.time_scale) == ("system", 0.01)
    assert settings.journal_body_bytes == 128 * 1024
    assert bulksim_app.http.get("/_sim/clock").json()["kind"] == "system"
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)

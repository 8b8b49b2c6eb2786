"""What the harness prints reads as English and names what the user wrote."""

from __future__ import annotations

import pytest

from contracts.checks import ClientNotConformant
from contracts.harness import default_settings, in_process
from simulator.clock import parse_iso
from simulator.settings import Settings, SettingsError
from tests.harness.test_hot_poll_threshold import poll_every_half_second


def test_one_finding_is_one_finding() -> None:
    with in_process(default_settings()) as sim:
        poll_every_half_second(sim, 3)
        with pytest.raises(ClientNotConformant) as raised:
            sim.assert_client_conformant()
    assert [f.check for f in raised.value.findings] == ["hot-poll"]
    assert "not conformant (1 finding):" in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (Settings(clock="system", start=parse_iso("2026-01-01T00:00:00Z")), "clock='manual'"),
        (Settings(clock="manual", journal_size=0), "journal_size"),
        (Settings(clock="manual", journal_body_bytes=-1), "journal_body_bytes"),
    ],
)
def test_settings_errors_name_the_field_not_a_flag(settings: Settings, field: str) -> None:
    with pytest.raises(SettingsError) as raised, in_process(settings):
        pass
    assert field in str(raised.value)
    assert "--" not in str(raised.value)

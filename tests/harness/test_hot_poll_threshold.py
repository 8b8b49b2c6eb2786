"""The hot-poll threshold scales with the settings' time_scale, and a test can set it."""

from __future__ import annotations

import pytest

from contracts.checks import ClientNotConformant
from contracts.clients.deepvue import DeepvueClient
from contracts.harness import Simulator, default_settings, in_process

CSV = b"vpa,name\nrahul.sharma@okaxis,\n"


def poll_every_half_second(sim: Simulator, processing_seconds: float) -> None:
    """A batch that takes a few seconds, polled every 0.5 s of the simulator's clock."""
    sim.options("deepvue", processing_seconds=processing_seconds)
    credentials = sim.credentials("deepvue")
    client = DeepvueClient(
        sim.client("deepvue"),
        credentials["client_id"],
        credentials["client_secret"],
        sleep=sim.clock.sleep,
        now=sim.clock.seconds,
        poll_interval=0.5,
        max_poll_interval=0.5,
    )
    sim.run_client(client.verify, CSV)
    assert len(sim.journal.entries(operation="get_batch_processing_status")) > 2


def test_a_half_second_poll_is_no_hot_loop_when_a_batch_takes_three_seconds() -> None:
    with in_process(default_settings(time_scale=0.01)) as sim:
        poll_every_half_second(sim, 300)  # 3 s at a hundredth of the time
        sim.assert_client_conformant()
        with pytest.raises(ClientNotConformant, match=r"hot-poll: .* less than 1s apart"):
            sim.assert_client_conformant(min_poll_interval=1.0)


def test_at_full_scale_a_half_second_poll_is_a_hot_loop() -> None:
    with in_process(default_settings()) as sim:
        poll_every_half_second(sim, 3)
        with pytest.raises(ClientNotConformant, match=r"hot-poll: .* less than 1s apart"):
            sim.assert_client_conformant()
        sim.assert_client_conformant(min_poll_interval=0.5)

"""The harness fixtures: both modes expose the same control API and behave alike."""

from __future__ import annotations

import httpx
import pytest

from contracts.harness import Simulator

CREDENTIALS_KEYS = {"client_id", "client_secret"}


@pytest.fixture(params=["bulksim_app", "bulksim_server"])
def sim(request: pytest.FixtureRequest) -> Simulator:
    simulator: Simulator = request.getfixturevalue(request.param)
    return simulator


def test_url_and_credentials_reach_the_provider(sim: Simulator) -> None:
    assert sim.url("deepvue").endswith("/deepvue")
    credentials = sim.credentials("deepvue")
    assert set(credentials) >= CREDENTIALS_KEYS
    with sim.client("deepvue") as client:
        response = client.post("/v1/authorize", data={k: credentials[k] for k in CREDENTIALS_KEYS})
    assert response.status_code == 200


def test_clock_starts_at_the_fixed_instant_and_moves(sim: Simulator) -> None:
    assert sim.clock.now().isoformat() == "2026-03-09T08:14:08+00:00"
    sim.clock.sleep(90)
    assert sim.clock.now().isoformat() == "2026-03-09T08:15:38+00:00"


def test_drop_fault_reaches_the_client_as_a_cut_connection(sim: Simulator) -> None:
    sim.faults.schedule("deepvue", "drop", operation="authorize")
    with sim.client("deepvue") as client, pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/authorize", data={"client_id": "a", "client_secret": "b"})
    assert sim.journal.entries(operation="authorize")[0]["fault"] == "drop"


def test_options_and_reset_round_trip(sim: Simulator) -> None:
    assert sim.options("deepvue", processing_seconds=5)["processing_seconds"] == 5.0
    sim.faults.schedule("deepvue", "malformed", count=3)
    sim.reset()
    assert sim.faults.list() == []
    assert sim.journal.entries() == []
    assert sim.options("deepvue", max_rows=10)["processing_seconds"] == 30.0


def test_served_fixture_is_reset_between_tests_part_one(bulksim_server: Simulator) -> None:
    bulksim_server.faults.schedule("deepvue", "drop", count=5)
    bulksim_server.clock.advance(3600)


def test_served_fixture_is_reset_between_tests_part_two(bulksim_server: Simulator) -> None:
    assert bulksim_server.faults.list() == []
    assert bulksim_server.clock.now().isoformat() == "2026-03-09T08:14:08+00:00"


def test_latency_fault_in_process_moves_the_manual_clock(bulksim_app: Simulator) -> None:
    bulksim_app.faults.schedule("deepvue", "latency", latency_ms=2500)
    with bulksim_app.client("deepvue") as client:
        assert client.post("/v1/authorize", data={"client_id": "a"}).status_code == 422
    assert bulksim_app.clock.now().isoformat() == "2026-03-09T08:14:10.500000+00:00"

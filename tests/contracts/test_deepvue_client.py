"""The reference Deepvue client survives faults, and each wrong client is caught by name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import Phase

from contracts.checks import ClientNotConformant
from contracts.clients.deepvue import DeepvueClient, DeepvueError
from contracts.harness import ClientCrashed, Simulator
from contracts.strategies import Scenario, fuzz

VPAS = b"vpa,name\nrahul.sharma@okaxis,Rahul Sharma\nnoaccount.x@ybl,\ninvalid.y@ybl,\n"


def client_for(
    sim: Simulator, cls: type[DeepvueClient] = DeepvueClient, **kwargs: object
) -> DeepvueClient:
    credentials = sim.credentials("deepvue")
    return cls(
        sim.client("deepvue"),
        credentials["client_id"],
        credentials["client_secret"],
        sleep=sim.clock.sleep,
        now=sim.clock.seconds,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def sim(bulksim_app: Simulator) -> Simulator:
    return bulksim_app


def test_reference_client_verifies_a_batch_conformantly(sim: Simulator) -> None:
    rows = sim.run_client(client_for(sim).verify, VPAS)
    assert [(r["vpa"], r["status"]) for r in rows] == [
        ("rahul.sharma@okaxis", "SUCCESS"),
        ("noaccount.x@ybl", "SUCCESS"),
        ("invalid.y@ybl", "FAILED"),
    ]
    sim.assert_client_conformant()


def test_reference_client_survives_every_fault_kind(sim: Simulator) -> None:
    sim.faults.schedule("deepvue", "rate_limit", operation="authorize", retry_after=7)
    sim.faults.schedule("deepvue", "drop", operation="submit_upi_basic_batch")
    sim.faults.schedule(
        "deepvue", "error", operation="get_batch_processing_status", error="InternalServerError"
    )
    sim.faults.schedule("deepvue", "malformed", operation="get_batch_processing_status")
    sim.faults.schedule(
        "deepvue", "error", operation="get_batch_processing_status", error="SourceUnavailable"
    )
    rows = sim.run_client(client_for(sim).verify, VPAS)
    assert len(rows) == 3
    sim.assert_client_conformant()


def test_reference_client_retries_a_cut_off_output_file(sim: Simulator) -> None:
    # Found by fuzzing: a mangled 200 on the download must be retried, not parsed as no rows.
    sim.faults.schedule("deepvue", "malformed", operation="download_batch_output_file")
    rows = sim.run_client(client_for(sim).verify, VPAS)
    assert len(rows) == 3
    sim.assert_client_conformant()


def test_reference_client_refreshes_a_token_that_expires_mid_batch(sim: Simulator) -> None:
    sim.options("deepvue", token_ttl_seconds=400, processing_seconds=3600)
    rows = sim.run_client(client_for(sim).verify, VPAS)
    assert len(rows) == 3
    authorizations = sim.journal.entries(operation="authorize")
    assert len(authorizations) > 1
    sim.assert_client_conformant()


# -- deliberately wrong clients, one mistake each --------------------------------------------


@dataclass
class TreatsInProgressAsDone(DeepvueClient):
    def wait(self, request_id: str) -> str:
        return str(self.status(request_id)["batch_output_file_url"])  # 201 is not done


@dataclass
class PollsInAHotLoop(DeepvueClient):
    def wait(self, request_id: str) -> str:
        while True:
            data = self.status(request_id)
            if data["status"] == 200:
                return str(data["batch_output_file_url"])
            self.sleep(0.05)


@dataclass
class NeverRefreshes(DeepvueClient):
    def _headers(self) -> dict[str, str]:
        if self._token is None:
            self.authorize()
        return {"Authorization": f"Bearer {self._token}", "x-api-key": self.client_secret}

    def _authorized(self, method: str, path: str, **kwargs: object) -> object:  # type: ignore[override]
        response = self.http.request(method, path, headers=self._headers(), **kwargs)  # type: ignore[arg-type]
        if response.status_code >= 300:
            raise DeepvueError(response)
        return response


@dataclass
class NoRetries(DeepvueClient):
    def __post_init__(self) -> None:
        from contracts.clients.base import RetryPolicy

        self.retry = RetryPolicy(attempts=1)


def test_wrong_client_treating_201_as_done_is_caught(sim: Simulator) -> None:
    client = client_for(sim, TreatsInProgressAsDone)
    with pytest.raises(ClientCrashed):
        sim.run_client(client.verify, VPAS)
    with pytest.raises(
        ClientNotConformant, match=r"stopped-polling: stopped polling .* still in progress"
    ):
        sim.assert_client_conformant()


def test_wrong_client_polling_in_a_hot_loop_is_caught(sim: Simulator) -> None:
    sim.options("deepvue", processing_seconds=3)
    sim.run_client(client_for(sim, PollsInAHotLoop).verify, VPAS)
    with pytest.raises(ClientNotConformant, match=r"hot-poll: polled .* less than 1s apart"):
        sim.assert_client_conformant()


def test_wrong_client_never_refreshing_its_token_is_caught(sim: Simulator) -> None:
    sim.options("deepvue", token_ttl_seconds=60, processing_seconds=600)
    with pytest.raises(ClientCrashed, match="Authorization failure"):
        sim.run_client(client_for(sim, NeverRefreshes).verify, VPAS)
    with pytest.raises(ClientNotConformant, match="expired-token: sent an expired token"):
        sim.assert_client_conformant()


def test_wrong_client_without_retries_is_caught_on_429(sim: Simulator) -> None:
    sim.faults.schedule(
        "deepvue", "rate_limit", operation="get_batch_processing_status", retry_after=9
    )
    with pytest.raises(ClientCrashed, match=r"gave up on a 429 rate limit .*Retry-After \(9s\)"):
        sim.run_client(client_for(sim, NoRetries).verify, VPAS)


def test_wrong_client_without_retries_is_caught_on_500(sim: Simulator) -> None:
    sim.faults.schedule("deepvue", "status", operation="submit_upi_basic_batch", status=500)
    with pytest.raises(ClientCrashed, match="gave up on a 500 server error"):
        sim.run_client(client_for(sim, NoRetries).verify, VPAS)


def test_wrong_client_without_retries_is_caught_on_a_dropped_connection(sim: Simulator) -> None:
    sim.faults.schedule("deepvue", "drop", operation="get_batch_processing_status")
    with pytest.raises(ClientCrashed, match="does not survive a dropped connection"):
        sim.run_client(client_for(sim, NoRetries).verify, VPAS)


@fuzz("deepvue", max_examples=25)
def test_reference_client_survives_any_scenario(bulksim_app: Simulator, scenario: Scenario) -> None:
    scenario.apply(bulksim_app)
    rows = bulksim_app.run_client(client_for(bulksim_app).verify, scenario.input())
    assert [row["vpa"] for row in rows] == list(scenario.items)
    bulksim_app.assert_client_conformant()


def test_fuzzing_shrinks_a_wrong_client_to_one_fault(bulksim_app: Simulator) -> None:
    tried: list[Scenario] = []

    @fuzz("deepvue", max_examples=20, max_faults=2, phases=[Phase.generate, Phase.shrink])
    def check(scenario: Scenario) -> None:
        tried.append(scenario)
        scenario.apply(bulksim_app)
        bulksim_app.run_client(client_for(bulksim_app, NoRetries).verify, scenario.input())

    with pytest.raises(ClientCrashed, match=r"gave up|does not survive"):
        check()
    # Hypothesis replays the smallest failing scenario last: one fault, striking once.
    smallest = tried[-1]
    assert len(smallest.faults) == 1
    assert smallest.faults[0]["count"] == 1
    assert smallest.options == {}


def test_scenario_replay_lists_the_control_plane_calls() -> None:
    scenario = Scenario(
        "deepvue",
        options={"processing_seconds": 5.0},
        items=("a@okaxis",),
        faults=({"kind": "drop", "operation": "authorize", "count": 1},),
    )
    assert scenario.replay().splitlines() == [
        "curl -s -X POST http://127.0.0.1:8700/_sim/reset",
        "curl -s -X POST http://127.0.0.1:8700/_sim/options -H 'Content-Type: application/json' "
        '-d \'{"provider": "deepvue", "options": {"processing_seconds": 5.0}}\'',
        "curl -s -X POST http://127.0.0.1:8700/_sim/faults -H 'Content-Type: application/json' "
        '-d \'{"provider": "deepvue", "kind": "drop", "operation": "authorize", "count": 1}\'',
    ]
    assert scenario.input() == b"vpa,name\na@okaxis,\n"

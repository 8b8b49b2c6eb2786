"""The reference Deepvue client survives faults, and each wrong client is caught by name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from contracts.checks import ClientNotConformant
from contracts.clients.deepvue import DeepvueClient, DeepvueError
from contracts.harness import ClientCrashed, Simulator

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
        now=lambda: sim.clock.now().timestamp(),
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

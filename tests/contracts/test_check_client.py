"""The reference Check client survives faults, and each wrong client is caught by name."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import Phase

from contracts.checks import ClientNotConformant
from contracts.clients.base import RetryPolicy
from contracts.clients.check import CheckClient, CheckError
from contracts.harness import ClientCrashed, Simulator
from contracts.strategies import Scenario, fuzz
from contracts.suites.check import SPACE

CLAIMS = (
    "The Earth is approximately 4.5 billion years old.",
    "[false] The Great Wall of China is visible from space.",
    "[fail] A claim every method fails on.",
    "[uncertain] Honey never spoils when stored properly.",
    "[true] Water boils at 100 degrees Celsius at sea level.",
    "Light from the Sun takes about eight minutes to reach the Earth.",
    "Mount Everest is the tallest mountain above sea level.",
    "Octopuses have three hearts.",
    "Bananas are berries, botanically speaking.",
    "Sound travels faster in water than in air.",
    "[slow] Venus spins in the opposite direction to most planets.",
    "A day on Mercury lasts longer than its year.",
)
CSV: bytes = SPACE.render(CLAIMS)
PAGE = 5  # smaller than the batch, so the results take three pages
Hook = Callable[[httpx.Response], None]


def client_for(
    sim: Simulator,
    cls: type[CheckClient] = CheckClient,
    hooks: Sequence[Hook] = (),
    **kwargs: Any,
) -> CheckClient:
    http = sim.client("check", event_hooks={"response": list(hooks)})
    return cls(
        http,
        sim.credentials("check")["api_key"],
        sleep=sim.clock.sleep,
        now=sim.clock.seconds,
        **{"page_size": PAGE, **kwargs},
    )


def lose_the_first_create_answer() -> Hook:
    """The create reaches Check and is carried out; its answer never comes back.

    A drop fault strikes before the handler runs, so only this hook (on the client's side
    of the connection) shows a client the case it must handle with care: a batch exists
    and the client does not know it.
    """
    lost: list[httpx.Request] = []

    def hook(response: httpx.Response) -> None:
        request = response.request
        if not lost and request.method == "POST" and request.url.path.endswith("/v1/batch"):
            lost.append(request)
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body", request=request
            )

    return hook


def strip_retry_after(response: httpx.Response) -> None:
    """A proxy that drops the Retry-After header: only the body's retryAfter is left."""
    response.headers.pop("retry-after", None)


def operations(sim: Simulator) -> list[str]:
    return [e["operation"] for e in sim.journal.entries(provider="check")]


def created_file_ids(sim: Simulator, *, rate_limited: bool = True) -> list[str]:
    """The fileId of each create, in order (without those refused with 429, if asked)."""
    return [
        e["request"]["body"]["fileId"]
        for e in sim.journal.entries(provider="check", operation="create_batch")
        if rate_limited or e["response"]["status"] != 429
    ]


@pytest.fixture
def sim(bulksim_app: Simulator) -> Simulator:
    return bulksim_app


def test_reference_client_verifies_a_batch_conformantly(sim: Simulator) -> None:
    items = sim.run_client(client_for(sim).verify, CSV, name="Claims review")
    assert [i["content"] for i in items] == list(CLAIMS)
    assert [i["itemIndex"] for i in items] == list(range(len(CLAIMS)))
    by_content = {i["content"]: i for i in items}
    assert by_content[CLAIMS[1]]["verdict"] == "false"
    assert by_content[CLAIMS[2]]["status"] == "failed"
    assert by_content[CLAIMS[10]]["status"] == "completed"
    ops = operations(sim)
    assert ops.count("upload_batch_file") == ops.count("create_batch") == 1
    assert ops.count("get_batch_results") == 3
    assert ops.count("get_batch") > 1
    sim.assert_client_conformant()


def test_reference_client_names_the_batch_with_a_unique_tag(sim: Simulator) -> None:
    client = client_for(sim, tag=lambda: "t0k3n")
    batch_id = sim.run_client(client.submit, CSV, name="Claims review")
    assert client.status(batch_id)["name"] == "Claims review [t0k3n]"


def test_reference_client_reads_a_json_file(sim: Simulator) -> None:
    content = json.dumps(
        {"items": [{"content": c, "idempotencyKey": f"k{n}"} for n, c in enumerate(CLAIMS[:3])]}
    ).encode()
    items = sim.run_client(client_for(sim).verify, content, "claims.json")
    assert [(i["idempotencyKey"], i["content"]) for i in items] == [
        (f"k{n}", c) for n, c in enumerate(CLAIMS[:3])
    ]
    sim.assert_client_conformant()


def test_reference_client_returns_a_batch_in_which_every_item_failed(sim: Simulator) -> None:
    content = SPACE.render(["[fail] one", "[timeout] two"])
    client = client_for(sim)
    batch_id = sim.run_client(client.submit, content)
    assert sim.run_client(client.wait, batch_id)["status"] == "failed"
    items = sim.run_client(client.results, batch_id)
    assert [i["status"] for i in items] == ["failed", "failed"]
    sim.assert_client_conformant()


def test_reference_client_polls_with_growing_intervals(sim: Simulator) -> None:
    # The documentation's batch_inprogress01 runs for ten minutes from the start.
    batch = sim.run_client(client_for(sim).wait, "batch_inprogress01")
    assert batch["status"] == "completed"
    polls = sim.journal.entries(provider="check", operation="get_batch")
    gaps = [(b["epoch_ms"] - a["epoch_ms"]) / 1000 for a, b in itertools.pairwise(polls)]
    assert gaps[:3] == [2.0, 3.0, 4.5]
    assert gaps == sorted(gaps)
    assert max(gaps) == 30.0
    assert len(polls) < 40
    sim.assert_client_conformant()


def test_reference_client_stops_waiting_after_max_wait(sim: Simulator) -> None:
    with pytest.raises(TimeoutError, match="batch_inprogress01 still processing after 60s"):
        client_for(sim, max_wait=60).wait("batch_inprogress01")


def test_reference_client_survives_every_fault_kind(sim: Simulator) -> None:
    sim.faults.schedule("check", "rate_limit", operation="upload_batch_file", retry_after=7)
    sim.faults.schedule("check", "drop", operation="create_batch")
    sim.faults.schedule("check", "status", operation="list_batches", status=503)
    sim.faults.schedule("check", "malformed", operation="get_batch")
    sim.faults.schedule("check", "error", operation="get_batch", error="InternalError")
    sim.faults.schedule("check", "latency", operation="get_batch_results", latency_ms=5000)
    sim.faults.schedule("check", "drop", operation="get_batch_results")
    sim.faults.schedule("check", "malformed", operation="get_batch_results")
    items = sim.run_client(client_for(sim).verify, CSV)
    assert [i["content"] for i in items] == list(CLAIMS)
    assert sim.faults.list("check") == []
    sim.assert_client_conformant()


def test_reference_client_uploads_again_after_a_create_that_did_not_land(sim: Simulator) -> None:
    sim.faults.schedule("check", "drop", operation="create_batch")
    sim.faults.schedule("check", "malformed", operation="create_batch")
    sim.faults.schedule("check", "status", operation="create_batch", status=502)
    items = sim.run_client(client_for(sim).verify, CSV)
    assert len(items) == len(CLAIMS)
    ops = operations(sim)
    # Each unknown outcome: look for the batch, find none, upload again, create once more.
    assert ops.count("create_batch") == 4
    assert ops.count("list_batches") == 3
    assert ops.count("upload_batch_file") == 4
    file_ids = created_file_ids(sim)
    assert len(set(file_ids)) == len(file_ids) == 4
    sim.assert_client_conformant()


def test_reference_client_adopts_a_batch_whose_create_answer_was_lost(sim: Simulator) -> None:
    client = client_for(sim, hooks=[lose_the_first_create_answer()])
    items = sim.run_client(client.verify, CSV)
    assert len(items) == len(CLAIMS)
    ops = operations(sim)
    assert ops.count("create_batch") == 1  # it landed: the lookup found it, nothing was re-sent
    assert ops.count("list_batches") == 1
    assert ops.count("upload_batch_file") == 1
    sim.assert_client_conformant()


def test_reference_client_retries_a_rate_limited_create_with_the_same_file(sim: Simulator) -> None:
    sim.faults.schedule("check", "rate_limit", operation="create_batch", retry_after=20, count=2)
    sim.run_client(client_for(sim).submit, CSV)
    file_ids = created_file_ids(sim)
    assert len(file_ids) == 3
    assert len(set(file_ids)) == 1  # a 429 is refused before it is processed: the file is unused
    assert "list_batches" not in operations(sim)
    sim.assert_client_conformant()


def test_reference_client_waits_out_enforced_rate_limits(sim: Simulator) -> None:
    sim.options("check", enforce_rate_limits=True, pro_requests_per_minute=3)
    items = sim.run_client(client_for(sim).verify, CSV)
    assert len(items) == len(CLAIMS)
    statuses = [e["response"]["status"] for e in sim.journal.entries(provider="check")]
    assert statuses.count(429) >= 2
    sim.assert_client_conformant()


def test_reference_client_takes_the_wait_from_the_body_without_retry_after(
    sim: Simulator,
) -> None:
    sim.faults.schedule("check", "rate_limit", operation="get_batch", retry_after=40)
    items = sim.run_client(client_for(sim, hooks=[strip_retry_after]).verify, CSV)
    assert len(items) == len(CLAIMS)
    sim.assert_client_conformant()


def test_reference_client_does_not_retry_storage_switched_off(sim: Simulator) -> None:
    sim.options("check", file_storage=False)
    with pytest.raises(ClientCrashed, match="FILE_STORAGE_UNAVAILABLE"):
        sim.run_client(client_for(sim).verify, CSV)
    assert operations(sim) == ["upload_batch_file"]


def test_reference_client_over_a_real_socket(bulksim_server: Simulator) -> None:
    sim = bulksim_server
    sim.faults.schedule("check", "drop", operation="create_batch")
    sim.faults.schedule("check", "drop", operation="get_batch_results")
    client = client_for(sim)
    with client.http:  # a real connection pool: close it
        items = sim.run_client(client.verify, CSV)
    assert [i["content"] for i in items] == list(CLAIMS)
    assert [e["fault"] for e in sim.journal.entries() if e["fault"]] == ["drop", "drop"]
    sim.assert_client_conformant()


# -- deliberately wrong clients, one mistake each --------------------------------------------


@dataclass
class RetriesTheCreateBlindly(CheckClient):
    """Sends the create like any other call: a lost answer is retried with the same fileId."""

    def submit(self, content: bytes, filename: str = "items.csv", **kwargs: object) -> str:
        file_id = self.upload(content, filename)
        response = self._call(
            "create a batch",
            "POST",
            "/v1/batch",
            intact=lambda r: "id" in r.json(),
            json={"fileId": file_id},
        )
        batch_id: str = response.json()["id"]
        return batch_id


@dataclass
class CachesTheFileId(CheckClient):
    """Uploads a file once and keeps its fileId for the next batch of the same file."""

    def __post_init__(self) -> None:
        self.uploaded: dict[bytes, str] = {}

    def upload(self, content: bytes, filename: str = "items.csv") -> str:
        if content not in self.uploaded:
            self.uploaded[content] = super().upload(content, filename)
        return self.uploaded[content]


@dataclass
class IgnoresHasMore(CheckClient):
    def results(self, batch_id: str) -> list[dict[str, Any]]:
        page = self._call(
            "get results",
            "GET",
            f"/v1/batch/{batch_id}/results",
            intact=lambda r: True,
            params={"limit": self.page_size},
        )
        items: list[dict[str, Any]] = page.json()["items"]
        return items


@dataclass
class TreatsProcessingAsDone(CheckClient):
    def wait(self, batch_id: str) -> dict[str, Any]:
        return self.status(batch_id)  # "processing" is not a result


@dataclass
class PollsInAHotLoop(CheckClient):
    def wait(self, batch_id: str) -> dict[str, Any]:
        while True:
            batch = self.status(batch_id)
            if batch["status"] in ("completed", "failed", "cancelled"):
                return batch
            self.sleep(0.05)


@dataclass
class NoRetries(CheckClient):
    def __post_init__(self) -> None:
        self.retry = RetryPolicy(attempts=1)


@dataclass
class IgnoresRetryAfter(CheckClient):
    """Retries, but on its own backoff schedule, whatever a 429 asks for."""

    def _read_limits(self, response: httpx.Response) -> httpx.Response:
        response.headers.pop("retry-after", None)
        return response


def test_wrong_client_retrying_the_create_blindly_is_caught(sim: Simulator) -> None:
    client = client_for(sim, RetriesTheCreateBlindly, hooks=[lose_the_first_create_answer()])
    with pytest.raises(ClientCrashed, match=r"409 .*conflict"):
        sim.run_client(client.verify, CSV)
    with pytest.raises(
        ClientNotConformant, match=r"reused-one-shot: used a one-shot resource \(a fileId\)"
    ):
        sim.assert_client_conformant()


def test_wrong_client_caching_the_file_id_is_caught(sim: Simulator) -> None:
    client = client_for(sim, CachesTheFileId)
    sim.run_client(client.verify, CSV)
    with pytest.raises(ClientCrashed, match="File has already been used"):
        sim.run_client(client.verify, CSV)
    with pytest.raises(ClientNotConformant, match="reused-one-shot"):
        sim.assert_client_conformant()


def test_wrong_client_ignoring_has_more_is_caught(sim: Simulator) -> None:
    items = sim.run_client(client_for(sim, IgnoresHasMore).verify, CSV)
    assert len(items) == PAGE
    with pytest.raises(
        ClientNotConformant, match=r"stopped-paging: stopped paging batch_\w+ at 0 while"
    ):
        sim.assert_client_conformant()


def test_wrong_client_treating_processing_as_done_is_caught(sim: Simulator) -> None:
    items = sim.run_client(client_for(sim, TreatsProcessingAsDone).verify, CSV)
    assert {i["status"] for i in items} <= {"pending", "queued", "processing"}
    with pytest.raises(
        ClientNotConformant, match=r"stopped-polling: stopped polling batch_\w+ while it was still"
    ):
        sim.assert_client_conformant()


def test_wrong_client_polling_in_a_hot_loop_is_caught(sim: Simulator) -> None:
    sim.run_client(client_for(sim, PollsInAHotLoop).verify, CSV)
    with pytest.raises(ClientNotConformant, match=r"hot-poll: polled batch_\w+ .* less than 1s"):
        sim.assert_client_conformant()


def test_wrong_client_without_retries_is_caught_on_429(sim: Simulator) -> None:
    sim.faults.schedule("check", "rate_limit", operation="get_batch", retry_after=9)
    with pytest.raises(ClientCrashed, match=r"gave up on a 429 rate limit .*Retry-After \(9s\)"):
        sim.run_client(client_for(sim, NoRetries).verify, CSV)


def test_wrong_client_without_retries_is_caught_on_500(sim: Simulator) -> None:
    sim.faults.schedule("check", "error", operation="upload_batch_file", error="InternalError")
    with pytest.raises(ClientCrashed, match="gave up on a 500 server error"):
        sim.run_client(client_for(sim, NoRetries).verify, CSV)


def test_wrong_client_without_retries_is_caught_on_a_dropped_connection(sim: Simulator) -> None:
    sim.faults.schedule("check", "drop", operation="get_batch_results")
    with pytest.raises(ClientCrashed, match="does not survive a dropped connection"):
        sim.run_client(client_for(sim, NoRetries).verify, CSV)


def test_wrong_client_ignoring_retry_after_is_caught_on_a_fault(sim: Simulator) -> None:
    sim.faults.schedule("check", "rate_limit", operation="get_batch", retry_after=30)
    sim.run_client(client_for(sim, IgnoresRetryAfter).verify, CSV)
    with pytest.raises(
        ClientNotConformant,
        match=r"ignored-retry-after: called again 1s after a 429 whose Retry-After asked for 30s",
    ):
        sim.assert_client_conformant()


def test_wrong_client_ignoring_retry_after_is_caught_under_enforcement(sim: Simulator) -> None:
    sim.options("check", enforce_rate_limits=True, pro_requests_per_minute=3)
    sim.run_client(client_for(sim, IgnoresRetryAfter).verify, CSV)
    with pytest.raises(ClientNotConformant, match="ignored-retry-after: called again"):
        sim.assert_client_conformant()


def test_check_error_names_what_the_client_was_doing(sim: Simulator) -> None:
    client = client_for(sim)
    with pytest.raises(CheckError, match=r"404 to get the batch: .*Batch not found"):
        client.status("batch_000000000000")


@fuzz("check", max_examples=25)
def test_reference_client_survives_any_scenario(bulksim_app: Simulator, scenario: Scenario) -> None:
    scenario.apply(bulksim_app)
    client = client_for(bulksim_app, page_size=7)
    items = bulksim_app.run_client(client.verify, scenario.input())
    assert [i["content"] for i in items] == list(scenario.items)
    # A fileId is sent again only after a 429, which Check answers before processing.
    file_ids = created_file_ids(bulksim_app, rate_limited=False)
    assert len(set(file_ids)) == len(file_ids)
    bulksim_app.assert_client_conformant()


def test_fuzzing_shrinks_a_wrong_client_to_one_fault(bulksim_app: Simulator) -> None:
    tried: list[Scenario] = []

    # Without Hypothesis's explain phase: it only annotates the report, and takes most of the time.
    @fuzz("check", max_examples=20, max_faults=2, phases=[Phase.generate, Phase.shrink])
    def check(scenario: Scenario) -> None:
        tried.append(scenario)
        scenario.apply(bulksim_app)
        crash = None
        try:
            bulksim_app.run_client(client_for(bulksim_app, NoRetries).verify, scenario.input())
        except ClientCrashed as exc:
            crash = str(exc)
        # One failure wherever the crash happened (the create gives up in its own loop), so
        # Hypothesis shrinks to one smallest scenario instead of one per place of raising.
        if crash is not None:
            raise ClientCrashed(crash)

    with pytest.raises(ClientCrashed, match=r"gave up|does not survive"):
        check()
    smallest = tried[-1]
    assert len(smallest.faults) == 1
    assert smallest.faults[0]["count"] == 1
    assert smallest.options == {}

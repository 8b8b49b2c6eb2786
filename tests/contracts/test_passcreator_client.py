"""The reference Passcreator client survives faults, and each wrong client is caught by name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import Phase, example

from contracts.checks import ClientNotConformant
from contracts.clients.base import GaveUp, RetryPolicy
from contracts.clients.passcreator import (
    TERMINAL,
    BulkResult,
    PasscreatorClient,
    PasscreatorError,
    encode_query,
)
from contracts.harness import ClientCrashed, Simulator
from contracts.strategies import Scenario, fuzz
from contracts.suites.passcreator import FUZZ_GROUP, create_failure, render

BATCH = {"groups": [[FUZZ_GROUP]]}
# plain, plain, a magic failure, no userProvidedId, an update-locked pass
KINDS = ["plain", "plain", "fail", "anonymous", "locked"]
Items = list[dict[str, object]]


def client_for(
    sim: Simulator, cls: type[PasscreatorClient] = PasscreatorClient, **kwargs: Any
) -> PasscreatorClient:
    return cls(
        sim.client("passcreator"),
        sim.credentials("passcreator")["api_key"],
        sleep=sim.clock.sleep,
        now=sim.clock.seconds,
        **kwargs,
    )


@pytest.fixture
def sim(bulksim_app: Simulator) -> Simulator:
    return bulksim_app


def items_for(sim: Simulator, kinds: list[str]) -> Items:
    """Items of ``kinds`` on the template the simulator lists for the test account."""
    return render(kinds, sim.credentials("passcreator"))


@pytest.fixture
def items(sim: Simulator) -> Items:
    return items_for(sim, KINDS)


def processes_started(sim: Simulator) -> int:
    """Bulk submits the provider took (only a latency fault lets a call through)."""
    return sum(
        1
        for operation in ("create_pass", "update_passes")
        for e in sim.journal.entries(operation=operation)
        if (e["fault"] or "latency").startswith("latency") and e["response"]["status"] == 200
    )


def test_reference_client_creates_in_bulk_and_reports_failed_items(
    sim: Simulator, items: Items
) -> None:
    client = client_for(sim)
    result = sim.run_client(client.create_passes, items)
    assert result.status == "finished with errors"
    assert (result.current, result.total) == (5, 5)
    assert result.failed_items(items) == {2: "Barcode value already printed"}
    assert result.succeeded_items(items) == [0, 1, 3, 4]
    assert client.started == [result.identifier]
    assert not result.maybe_duplicated

    found = sim.run_client(client.check_created, items, result)
    assert sorted(found.passes) == [0, 1, 4]
    assert [found.passes[i]["firstname"] for i in (0, 1, 4)] == ["Guest 0", "Guest 1", "Guest 4"]
    assert found.missing == []
    assert found.unverifiable == [3]  # no userProvidedId: Passcreator cannot be asked for it
    sim.assert_client_conformant()


def test_reference_client_updates_in_bulk_and_reports_locked_passes(
    sim: Simulator, items: Items
) -> None:
    client = client_for(sim)
    sim.run_client(client.create_passes, items)
    result = sim.run_client(client.update_passes, BATCH, {"tier": "gold"})
    assert result.status == "finished with errors"
    assert result.total == 4
    assert result.errors == {"locked:Pass 4 is locked": "Pass 4 is locked"}
    tiers = {p["firstname"]: p.get("tier") for p in client.find_passes(BATCH)}
    assert tiers == {"Guest 0": "gold", "Guest 1": "gold", "Guest 3": "gold", "Guest 4": None}
    sim.assert_client_conformant()


def test_reference_client_reads_a_clean_finish_as_ok(sim: Simulator) -> None:
    items = items_for(sim, ["plain", "anonymous"])
    result = sim.run_client(client_for(sim).create_passes, items)
    assert (result.status, result.errors, result.ok) == ("finished", {}, True)


def test_reference_client_survives_every_fault_kind(sim: Simulator, items: Items) -> None:
    sim.faults.schedule("passcreator", "rate_limit", operation="create_pass", retry_after=7)
    sim.faults.schedule("passcreator", "status", operation="create_pass", status=502)
    sim.faults.schedule("passcreator", "drop", operation="get_process")
    sim.faults.schedule("passcreator", "malformed", operation="get_process")
    sim.faults.schedule("passcreator", "error", operation="get_process", error="TooManyRequests")
    sim.faults.schedule("passcreator", "latency", operation="get_process", latency_ms=4000)
    sim.faults.schedule("passcreator", "drop", operation="update_passes")
    sim.faults.schedule("passcreator", "malformed", operation="list_passes")
    sim.faults.schedule(
        "passcreator", "error", operation="list_passes", error="InternalServerError"
    )
    client = client_for(sim)
    created = sim.run_client(client.create_passes, items)
    assert created.failed_items(items) == {2: "Barcode value already printed"}
    updated = sim.run_client(client.update_passes, BATCH, {"tier": "gold"})
    assert updated.total == 4
    assert sorted(sim.run_client(client.check_created, items, created).passes) == [0, 1, 4]
    # Every fault struck before the provider took the request: retries duplicated nothing.
    assert processes_started(sim) == 2
    assert sim.faults.list("passcreator") == []
    sim.assert_client_conformant()


def test_a_submit_retried_after_an_answer_that_may_have_been_processed_says_so(
    sim: Simulator,
    items: Items,
) -> None:
    client = client_for(sim)
    sim.faults.schedule("passcreator", "rate_limit", operation="create_pass", retry_after=1)
    assert not sim.run_client(client.create_passes, items).maybe_duplicated  # 429: not taken
    sim.faults.schedule("passcreator", "drop", operation="create_pass")
    assert sim.run_client(client.create_passes, items).maybe_duplicated
    sim.faults.schedule("passcreator", "malformed", operation="update_passes")
    assert sim.run_client(client.update_passes, BATCH, {"tier": "x"}).maybe_duplicated


def test_reference_client_pages_to_the_end(sim: Simulator) -> None:
    client = client_for(sim, page_size=2)
    sim.run_client(client.create_passes, items_for(sim, ["plain"] * 5))
    found = list(client.find_passes(BATCH))
    assert sorted(p["userProvidedId"] for p in found) == [f"fz-{n}" for n in range(5)]
    pages = sim.journal.entries(operation="list_passes")
    assert [e["query"].split("&")[1] for e in pages] == ["page=1", "page=2", "page=3"]
    sim.assert_client_conformant()


def test_reference_client_keeps_the_process_id_to_resume_after_giving_up(
    sim: Simulator, items: Items
) -> None:
    client = client_for(sim, retry=RetryPolicy(attempts=2))
    sim.faults.schedule("passcreator", "status", operation="get_process", status=503, count=2)
    with pytest.raises(GaveUp):
        client.create_passes(items)
    [identifier] = client.started
    result = sim.run_client(client.wait, identifier)
    assert (result.identifier, result.status) == (identifier, "finished with errors")


def test_reference_client_raises_the_provider_errors_it_cannot_retry(
    sim: Simulator, items: Items
) -> None:
    client = client_for(sim)
    client.api_key = f"Bearer {client.api_key}"
    with pytest.raises(PasscreatorError, match=r"401: .*without a Bearer prefix") as caught:
        client.create_passes(items)
    assert caught.value.messages[0].startswith("Invalid API key.")
    with pytest.raises(PasscreatorError, match="404: Object not found"):
        client_for(sim).wait("00000000-0000-4000-8000-000000000000")


def test_reference_client_works_over_a_real_socket(bulksim_server: Simulator) -> None:
    items = items_for(bulksim_server, KINDS)
    bulksim_server.faults.schedule("passcreator", "drop", operation="create_pass")
    bulksim_server.faults.schedule("passcreator", "drop", operation="get_process")
    client = client_for(bulksim_server)
    with client.http:
        result = bulksim_server.run_client(client.create_passes, items)
    assert result.failed_items(items) == {2: "Barcode value already printed"}
    assert processes_started(bulksim_server) == 1
    bulksim_server.assert_client_conformant()


def test_query_is_unpadded_base64url_json() -> None:
    assert encode_query({"searchPhrase": "a?"}) == "eyJzZWFyY2hQaHJhc2UiOiJhPyJ9"
    assert encode_query({"searchPhrase": "ü>"}) == "eyJzZWFyY2hQaHJhc2UiOiLDvD4ifQ"


# -- deliberately wrong clients, one mistake each --------------------------------------------


@dataclass
class TreatsInProgressAsDone(PasscreatorClient):
    def wait(self, identifier: str) -> BulkResult:
        data = self.process(identifier)  # "in progress" is not a result
        return BulkResult(identifier, data["status"], data["current"], data["total"])


@dataclass
class CrashesOnFinishedWithErrors(PasscreatorClient):
    def wait(self, identifier: str) -> BulkResult:
        outcome = {"in progress": None, "finished": True}  # forgets the third status
        while True:
            data = self.process(identifier)
            if outcome[data["status"]]:
                return BulkResult(identifier, data["status"], data["current"], data["total"])
            self.sleep(self.poll_interval)


@dataclass
class PollsInAHotLoop(PasscreatorClient):
    def wait(self, identifier: str) -> BulkResult:
        while True:
            data = self.process(identifier)
            if data["status"] in TERMINAL:
                return BulkResult(identifier, data["status"], data["current"], data["total"])
            self.sleep(0.05)


@dataclass
class PollsAfterTerminal(PasscreatorClient):
    def wait(self, identifier: str) -> BulkResult:
        result = super().wait(identifier)
        self.process(identifier)  # "once more, to be sure": the answer will not change
        return result


@dataclass
class NoRetries(PasscreatorClient):
    def __post_init__(self) -> None:
        self.retry = RetryPolicy(attempts=1)


@dataclass
class StopsAfterTheFirstPage(PasscreatorClient):
    def find_passes(self, query: Mapping[str, object]) -> Iterator[dict[str, Any]]:
        params = {"query": encode_query(query), "pageSize": str(self.page_size)}
        response = self._call("GET", "/api/v3/pass", params=params, intact=lambda r: True)
        yield from response.json()["data"]


def test_wrong_client_treating_in_progress_as_done_is_caught(sim: Simulator, items: Items) -> None:
    result = sim.run_client(client_for(sim, TreatsInProgressAsDone).create_passes, items)
    assert result.status == "in progress"  # it returns without a crash, with nothing done
    with pytest.raises(
        ClientNotConformant, match=r"stopped-polling: stopped polling .* still in progress"
    ):
        sim.assert_client_conformant()


def test_wrong_client_crashing_on_finished_with_errors_is_caught(
    sim: Simulator, items: Items
) -> None:
    with pytest.raises(
        ClientCrashed,
        match=r"raised KeyError: 'finished with errors' after GET \S+/api/v3/process/\S+ → 200 "
        r'answered .*"status": "finished with errors"',
    ):
        sim.run_client(client_for(sim, CrashesOnFinishedWithErrors).create_passes, items)


def test_wrong_client_polling_in_a_hot_loop_is_caught(sim: Simulator, items: Items) -> None:
    sim.options("passcreator", items_per_second=1)
    sim.run_client(client_for(sim, PollsInAHotLoop).create_passes, items)
    with pytest.raises(ClientNotConformant, match=r"hot-poll: polled .* less than 1s apart"):
        sim.assert_client_conformant()


def test_wrong_client_polling_after_terminal_is_caught(sim: Simulator, items: Items) -> None:
    sim.run_client(client_for(sim, PollsAfterTerminal).create_passes, items)
    with pytest.raises(
        ClientNotConformant, match=r"poll-after-terminal: kept polling \S+ after it reached"
    ):
        sim.assert_client_conformant()


def test_wrong_client_without_retries_is_caught_on_429(sim: Simulator, items: Items) -> None:
    sim.faults.schedule("passcreator", "rate_limit", operation="get_process", retry_after=9)
    with pytest.raises(ClientCrashed, match=r"gave up on a 429 rate limit .*Retry-After \(9s\)"):
        sim.run_client(client_for(sim, NoRetries).create_passes, items)


def test_wrong_client_without_retries_is_caught_on_500(sim: Simulator, items: Items) -> None:
    sim.faults.schedule("passcreator", "status", operation="create_pass", status=500)
    with pytest.raises(ClientCrashed, match="gave up on a 500 server error"):
        sim.run_client(client_for(sim, NoRetries).create_passes, items)


def test_wrong_client_without_retries_is_caught_on_a_dropped_connection(sim: Simulator) -> None:
    sim.faults.schedule("passcreator", "drop", operation="update_passes")
    with pytest.raises(ClientCrashed, match="does not survive a dropped connection"):
        sim.run_client(client_for(sim, NoRetries).update_passes, BATCH, {"tier": "gold"})


def test_wrong_client_without_retries_is_caught_on_a_cut_off_body(
    sim: Simulator, items: Items
) -> None:
    sim.faults.schedule("passcreator", "malformed", operation="get_process")
    with pytest.raises(ClientCrashed, match="does not survive a response body that is not JSON"):
        sim.run_client(client_for(sim, NoRetries).create_passes, items)


def test_wrong_client_stopping_after_the_first_page_is_caught(sim: Simulator, items: Items) -> None:
    client = client_for(sim, StopsAfterTheFirstPage, page_size=2)
    sim.run_client(client.create_passes, items)
    assert len(list(client.find_passes(BATCH))) == 2
    with pytest.raises(ClientNotConformant, match=r"stopped-paging: stopped paging .* at 1 "):
        sim.assert_client_conformant()


# -- fuzzing -----------------------------------------------------------------------------------


def test_scenario_items_take_the_template_the_simulator_lists(sim: Simulator) -> None:
    scenario = Scenario("passcreator", items=("plain", "unknown-template", "anonymous"))
    with pytest.raises(RuntimeError, match="apply the scenario to a simulator"):
        scenario.input()
    scenario.apply(sim)
    template = sim.credentials("passcreator")["template_id"]
    assert [item["templateId"] for item in scenario.input()] == [
        template,
        "00000000-0000-4000-8000-000000000000",
        template,
    ]
    assert scenario == Scenario("passcreator", items=("plain", "unknown-template", "anonymous"))
    assert "credentials" not in repr(scenario)


def answers_lost(sim: Simulator, *operations: str) -> int:
    """Calls of ``operations`` that a ``drop_after`` fault struck: handled, answer lost."""
    return sum(
        1
        for operation in operations
        for e in sim.journal.entries(operation=operation)
        if e["fault"] == "drop_after"
    )


# A drop_after scheduled behind a latency on the same operation: the submit goes through
# delayed, and the drop_after is never reached, so nothing may have been duplicated.
@example(
    scenario=Scenario(
        "passcreator",
        items=("plain",),
        faults=(
            {"kind": "latency", "latency_ms": 5000, "operation": "create_pass", "count": 1},
            {"kind": "drop_after", "operation": "create_pass", "count": 1},
        ),
    )
)
@fuzz("passcreator", max_examples=20)
def test_reference_client_survives_any_scenario(bulksim_app: Simulator, scenario: Scenario) -> None:
    scenario.apply(bulksim_app)
    client = client_for(bulksim_app)
    items = scenario.input()
    outcomes = {i: create_failure(kind, scenario.options) for i, kind in enumerate(scenario.items)}

    created = bulksim_app.run_client(client.create_passes, items)
    assert created.status == ("finished with errors" if any(outcomes.values()) else "finished")
    assert created.failed_items(items) == {i: m for i, m in outcomes.items() if m is not None}
    found = bulksim_app.run_client(client.check_created, items, created)
    assert found.missing == []
    assert sorted([*found.passes, *found.unverifiable]) == created.succeeded_items(items)

    updated = bulksim_app.run_client(client.update_passes, BATCH, {"tier": "gold"})
    locked = {
        f"locked:Pass {i} is locked": f"Pass {i} is locked"
        for i, kind in enumerate(scenario.items)
        if kind == "locked"
    }
    lost_create = answers_lost(bulksim_app, "create_pass") > 0
    if lost_create:  # the items may exist twice; the update selects every copy
        assert updated.total >= len(created.succeeded_items(items))
        assert updated.errors.keys() <= locked.keys()
    else:
        assert (updated.total, updated.errors) == (len(created.succeeded_items(items)), locked)
    for made in bulksim_app.run_client(lambda: list(client.find_passes(BATCH))):
        assert made.get("tier") == (None if made["userProvidedId"] in locked else "gold")
    # An answer lost after the work (drop_after) makes a retried submit start its process
    # twice: Passcreator has no idempotency key, so the client can only say it may have. Only
    # a fault that struck counts: one scheduled behind another on the same operation (after a
    # latency, say, that let the submit through) never strikes, and then nothing was lost.
    if answers_lost(bulksim_app, "create_pass", "update_passes"):
        assert created.maybe_duplicated or updated.maybe_duplicated
        assert processes_started(bulksim_app) >= 2
    else:
        assert processes_started(bulksim_app) == 2
    bulksim_app.assert_client_conformant()


def test_fuzzing_shrinks_a_wrong_client_to_one_fault(bulksim_app: Simulator) -> None:
    tried: list[Scenario] = []

    @fuzz("passcreator", max_examples=20, max_faults=2, phases=[Phase.generate, Phase.shrink])
    def check(scenario: Scenario) -> None:
        tried.append(scenario)
        scenario.apply(bulksim_app)
        client = client_for(bulksim_app, NoRetries)
        bulksim_app.run_client(client.create_passes, scenario.input())
        bulksim_app.run_client(client.update_passes, BATCH, {"tier": "gold"})
        bulksim_app.run_client(lambda: list(client.find_passes(BATCH)))

    with pytest.raises(ClientCrashed, match=r"gave up|does not survive"):
        check()
    smallest = tried[-1]
    assert len(smallest.faults) == 1
    assert smallest.faults[0]["count"] == 1
    assert smallest.options == {}

"""The reference HelloAtlas client survives faults, and each wrong client is caught by name."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import Phase

from contracts.checks import ClientNotConformant
from contracts.clients.base import RetryPolicy
from contracts.clients.helloatlas import Extraction, HelloAtlasClient, HelloAtlasError, Page
from contracts.harness import ClientCrashed, Simulator, in_process
from contracts.strategies import Scenario, fuzz
from contracts.suites.helloatlas import files_of
from simulator.settings import Settings

# Three pages of 50, 50 and 20: every type, and each magic outcome.
NAMES = (
    "aadhaar_front.jpg",
    "pan_card.jpg",
    "dl_front.png",
    "voter_id_fail.jpg",
    "passport_blurry.jpg",
    "gst_cert.pdf",
    "scan_unknown.jpg",
    "pan_slow.jpg",
    "e-aadhaar.pdf",
    "scan.jpg",
) * 12
FILES = files_of(NAMES)
FAILED = "Unprocessable: Unable to extract data from the document"
UNIDENTIFIED = "Unprocessable: Document type could not be identified"
EXPIRED = "Authentication Error: Token has expired"
# The journal keeps the first 16 KiB of a body; a page of 50 extracted documents is up to
# about 50 KB. The checks judge a cut-off page by what is left of it (see the suite), and
# these tests let the journal keep whole pages so that every check is exact.
WHOLE_PAGE_CAP = 128 * 1024


def client_for(
    sim: Simulator, cls: type[HelloAtlasClient] = HelloAtlasClient, **kwargs: Any
) -> HelloAtlasClient:
    credentials = sim.credentials("helloatlas")
    return cls(
        sim.client("helloatlas"),
        credentials["client_id"],
        credentials["client_secret"],
        sleep=sim.clock.sleep,
        now=sim.clock.seconds,
        **kwargs,
    )


@pytest.fixture
def sim(bulksim_app: Simulator) -> Simulator:
    # The plugin's journal keeps whole pages of results: the checks judge every document.
    assert bulksim_app.state is not None
    assert bulksim_app.state.settings.journal_body_bytes >= WHOLE_PAGE_CAP
    return bulksim_app


def reads(sim: Simulator) -> list[tuple[int, int]]:
    """(page, status) of each extracts request, in order."""
    return [
        (int(parse_qs(e["query"]).get("page", ["1"])[0]), e["response"]["status"])
        for e in sim.journal.entries(provider="helloatlas", operation="get_bulk_extracts")
    ]


def operations(sim: Simulator) -> Counter[str]:
    return Counter(e["operation"] for e in sim.journal.entries(provider="helloatlas"))


def test_reference_client_extracts_a_batch_conformantly(sim: Simulator) -> None:
    results = sim.run_client(client_for(sim).extract, FILES)
    assert list(results) == list(FILES)
    assert not any(r.pending for r in results.values())
    by_name: dict[str, list[Extraction]] = {}
    for document_id, result in results.items():
        by_name.setdefault(NAMES[int(document_id) - 1], []).append(result)
    assert {r.error_message for r in by_name["voter_id_fail.jpg"]} == {FAILED}
    assert {r.error_message for r in by_name["scan_unknown.jpg"]} == {UNIDENTIFIED}
    assert {r.error_code for r in by_name["scan_unknown.jpg"]} == {"422"}
    assert {r.document_type for r in by_name["pan_slow.jpg"]} == {"PAN"}
    assert {r.document_type for r in by_name["e-aadhaar.pdf"]} == {"AADHAAR"}
    blurry = by_name["passport_blurry.jpg"][0].file_data
    assert blurry is not None
    assert blurry["name"]["confidence_score"] < 0.6
    failed = [r for r in results.values() if r.failed]
    assert len(failed) == 24
    assert all(r.file_data is None for r in failed)
    ops = operations(sim)
    assert ops["generate_bulk_auth_token"] == ops["bulk_multiupload"] == 1
    pages = reads(sim)
    assert pages[:3] == [(1, 200), (2, 200), (3, 200)]  # to the end first, then polled
    assert len(pages) > 3
    sim.assert_client_conformant()


# Only page 3 holds a slow document: pages 1 and 2 finish within 30 s, page 3 600 s later.
ONE_SLOW_PAGE = files_of(["pan_card.jpg"] * 100 + ["pan_slow.jpg"] + ["pan_card.jpg"] * 9)


def test_reference_client_reads_each_finished_page_once(sim: Simulator) -> None:
    sim.run_client(client_for(sim).extract, ONE_SLOW_PAGE)
    counts = Counter(page for page, _ in reads(sim))
    assert counts[3] > counts[1] + 3
    assert counts[1] == counts[2]
    sim.assert_client_conformant()


def test_reference_client_waits_for_documents_left_out(sim: Simulator) -> None:
    sim.options("helloatlas", pending_documents="omit")
    results = sim.run_client(client_for(sim).extract, FILES)
    assert list(results) == list(FILES)
    assert not any(r.pending for r in results.values())
    first = sim.journal.entries(provider="helloatlas", operation="get_bulk_extracts")[0]
    assert first["response"]["body"]["data"] == []  # nothing finished yet: an empty page
    assert first["response"]["body"]["has_next"] is True
    sim.assert_client_conformant()


def test_reference_client_returns_a_batch_in_which_every_document_failed(sim: Simulator) -> None:
    results = sim.run_client(
        client_for(sim).extract, files_of(["pan_fail.jpg", "corrupt.png", "unknown.jpg"])
    )
    assert [r.error_message for r in results.values()] == [FAILED, FAILED, UNIDENTIFIED]
    sim.assert_client_conformant()


def test_reference_client_refreshes_its_token_before_it_expires(sim: Simulator) -> None:
    sim.options("helloatlas", token_ttl_seconds=300)
    sim.run_client(client_for(sim).extract, FILES)  # slow documents: 600 s and more
    assert operations(sim)["generate_bulk_auth_token"] >= 3
    assert all(e["response"]["status"] != 401 for e in sim.journal.entries())
    sim.assert_client_conformant()


def test_reference_client_gets_a_new_token_once_on_a_401(sim: Simulator) -> None:
    client = client_for(sim)
    client._token, client._token_deadline = "not-a-helloatlas-token", math.inf
    results = sim.run_client(client.extract, files_of(["pan_card.jpg"]))
    assert results["1"].document_type == "PAN"
    assert [(e["operation"], e["response"]["status"]) for e in sim.journal.entries()][:4] == [
        ("bulk_multiupload", 401),
        ("generate_bulk_auth_token", 201),
        ("bulk_multiupload", 201),
        ("get_bulk_extracts", 200),
    ]
    sim.assert_client_conformant()


def test_reference_client_reports_wrong_credentials(sim: Simulator) -> None:
    client = client_for(sim)
    client.client_secret = "not-the-secret"
    with pytest.raises(HelloAtlasError, match=r"401 to get a token: .*Invalid Client-Id"):
        client.extract(FILES)
    assert list(operations(sim).elements()) == ["generate_bulk_auth_token"]  # not retried


def test_reference_client_survives_every_fault_kind(sim: Simulator) -> None:
    schedule = sim.faults.schedule
    schedule("helloatlas", "rate_limit", operation="generate_bulk_auth_token", retry_after=7)
    schedule("helloatlas", "drop", operation="bulk_multiupload")
    schedule("helloatlas", "malformed", operation="bulk_multiupload")
    schedule("helloatlas", "status", operation="get_bulk_extracts", status=502)
    schedule("helloatlas", "error", operation="get_bulk_extracts", error="ServiceUnavailable")
    schedule("helloatlas", "malformed", operation="get_bulk_extracts")
    schedule("helloatlas", "latency", operation="get_bulk_extracts", latency_ms=5000)
    schedule("helloatlas", "drop_after", operation="get_bulk_extracts")
    schedule("helloatlas", "error", operation="get_bulk_extracts", error="RateLimited")
    results = sim.run_client(client_for(sim).extract, FILES)
    assert list(results) == list(FILES)
    assert not any(r.pending for r in results.values())
    assert sim.faults.list("helloatlas") == []
    sim.assert_client_conformant()


def test_reference_client_over_a_real_socket(bulksim_server: Simulator) -> None:
    sim = bulksim_server
    sim.faults.schedule("helloatlas", "drop", operation="bulk_multiupload")
    sim.faults.schedule("helloatlas", "drop", operation="get_bulk_extracts")
    client = client_for(sim)
    with client.http:  # a real connection pool: close it
        results = sim.run_client(client.extract, FILES)
    assert list(results) == list(FILES)
    assert [e["fault"] for e in sim.journal.entries() if e["fault"]] == ["drop", "drop"]
    sim.assert_client_conformant()


def test_checks_judge_pages_the_journal_cut_off(bulksim_settings: Settings) -> None:
    """With the served default of 16 KiB a body, a cut-off page is judged by what is left."""
    with in_process(dataclasses.replace(bulksim_settings, journal_body_bytes=16 * 1024)) as sim:
        _judge_cut_off_pages(sim)


def _judge_cut_off_pages(sim: Simulator) -> None:
    names = ["aadhaar_front.jpg"] * 100
    sim.run_client(client_for(sim).extract, files_of(names))
    cut = [
        e
        for e in sim.journal.entries(operation="get_bulk_extracts")
        if isinstance(e["response"]["body"], str)
    ]
    assert cut  # 50 Aadhaar documents are about 50 KB
    sim.assert_client_conformant(skip=["cut-off-body"])  # reported, and judged by what is left

    sim.reset()
    client = client_for(sim, TreatsUnfinishedPagesAsFinal)
    sim.run_client(client.extract, files_of(names))
    with pytest.raises(ClientNotConformant, match="stopped-polling"):
        sim.assert_client_conformant()


# -- deliberately wrong clients, one mistake each --------------------------------------------


@dataclass
class IgnoresHasNext(HelloAtlasClient):
    def read_pages(self, batch_id: str) -> dict[int, Page]:
        return {1: self.page(batch_id, 1)}


@dataclass
class TreatsUnfinishedPagesAsFinal(HelloAtlasClient):
    def wait_for_pages(self, batch_id: str, pages: dict[int, Page]) -> None:
        """A page that answered 200 is taken as the result, "file_data": null and all."""


@dataclass
class PollsInAHotLoop(HelloAtlasClient):
    def wait_for_pages(self, batch_id: str, pages: dict[int, Page]) -> None:
        while unfinished := self._unfinished(pages):
            self.sleep(0.05)
            for number in unfinished:
                pages[number] = self.page(batch_id, number)


@dataclass
class RereadsEveryPage(HelloAtlasClient):
    """Waits with backoff, but reads the whole batch again each time."""

    def wait_for_pages(self, batch_id: str, pages: dict[int, Page]) -> None:
        interval = self.poll_interval
        while self._unfinished(pages):
            self.sleep(interval)
            interval = min(self.max_poll_interval, interval * 1.5)
            pages.update(self.read_pages(batch_id))


@dataclass
class NeverRefreshes(HelloAtlasClient):
    """Gets one token and keeps it for good, even when HelloAtlas refuses it."""

    _kept: str | None = None

    def _headers(self) -> dict[str, str]:
        if self._kept is None:
            self._kept = self.authenticate()
        return {"Token": self._kept}


@dataclass
class RefreshesOnlyAfterA401(HelloAtlasClient):
    """Ignores expires_in and waits for HelloAtlas to refuse the token."""

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            self.authenticate()
        return {"Token": str(self._token)}


@dataclass
class NoRetries(HelloAtlasClient):
    def __post_init__(self) -> None:
        self.retry = RetryPolicy(attempts=1)


def test_wrong_client_ignoring_has_next_is_caught(sim: Simulator) -> None:
    client = client_for(sim, IgnoresHasNext)
    batch_id = sim.run_client(client.submit, FILES)
    results = sim.run_client(client.results, batch_id)
    assert list(results) == [str(n) for n in range(1, 51)]
    with pytest.raises(
        ClientNotConformant,
        match=r"stopped-paging: stopped paging BATCH-\S+ \(50 a page\) at 1 while the answer "
        r"said more follow",
    ):
        sim.assert_client_conformant()


def test_wrong_client_taking_unfinished_pages_as_final_is_caught(sim: Simulator) -> None:
    results = sim.run_client(client_for(sim, TreatsUnfinishedPagesAsFinal).extract, FILES)
    assert all(r.pending for r in results.values())
    with pytest.raises(ClientNotConformant) as caught:
        sim.assert_client_conformant()
    assert [f.check for f in caught.value.findings] == ["stopped-polling"] * 3
    assert "stopped polling BATCH-" in str(caught.value)
    assert "page 3 (50 a page) while it was still in progress" in str(caught.value)


def test_wrong_client_taking_a_short_page_as_final_is_caught(sim: Simulator) -> None:
    sim.options("helloatlas", pending_documents="omit")
    client = client_for(sim, TreatsUnfinishedPagesAsFinal)
    batch_id = sim.run_client(client.submit, FILES)
    assert sim.run_client(client.results, batch_id) == {}  # every page empty, none final
    with pytest.raises(
        ClientNotConformant,
        match=r"stopped-polling: stopped polling BATCH-\S+ page 1 \(50 a page\) while",
    ):
        sim.assert_client_conformant()


def test_wrong_client_polling_in_a_hot_loop_is_caught(sim: Simulator) -> None:
    sim.options("helloatlas", min_processing_seconds=1, max_processing_seconds=3)
    sim.run_client(client_for(sim, PollsInAHotLoop).extract, files_of(NAMES[:6]))
    with pytest.raises(
        ClientNotConformant, match=r"hot-poll: polled BATCH-\S+ page 1 .* less than 1s apart"
    ):
        sim.assert_client_conformant()


def test_wrong_client_rereading_finished_pages_is_caught(sim: Simulator) -> None:
    sim.run_client(client_for(sim, RereadsEveryPage).extract, ONE_SLOW_PAGE)
    with pytest.raises(
        ClientNotConformant,
        match=r"poll-after-terminal: kept polling BATCH-\S+ page 1 \(50 a page\) after it",
    ):
        sim.assert_client_conformant()


def test_wrong_client_never_refreshing_its_token_is_caught(sim: Simulator) -> None:
    sim.options("helloatlas", token_ttl_seconds=300)
    with pytest.raises(ClientCrashed, match=EXPIRED):
        sim.run_client(client_for(sim, NeverRefreshes).extract, FILES)
    with pytest.raises(ClientNotConformant, match="expired-token: sent an expired token"):
        sim.assert_client_conformant()


def test_wrong_client_refreshing_only_after_a_401_is_caught(sim: Simulator) -> None:
    sim.options("helloatlas", token_ttl_seconds=300)
    results = sim.run_client(client_for(sim, RefreshesOnlyAfterA401).extract, FILES)
    assert len(results) == len(FILES)  # it recovers, but only after sending an expired token
    with pytest.raises(ClientNotConformant, match="expired-token: sent an expired token"):
        sim.assert_client_conformant()


def test_wrong_client_without_retries_is_caught_on_429(sim: Simulator) -> None:
    sim.faults.schedule("helloatlas", "rate_limit", operation="get_bulk_extracts", retry_after=9)
    with pytest.raises(ClientCrashed, match=r"gave up on a 429 rate limit .*Retry-After \(9s\)"):
        sim.run_client(client_for(sim, NoRetries).extract, FILES)


@pytest.mark.parametrize(
    ("operation", "error", "status"),
    [
        ("generate_bulk_auth_token", "InternalServerError", 500),
        ("bulk_multiupload", "ServiceUnavailable", 503),
        ("get_bulk_extracts", "InternalServerError", 500),
    ],
)
def test_wrong_client_without_retries_is_caught_on_5xx(
    sim: Simulator, operation: str, error: str, status: int
) -> None:
    sim.faults.schedule("helloatlas", "error", operation=operation, error=error)
    with pytest.raises(ClientCrashed, match=f"gave up on a {status} server error"):
        sim.run_client(client_for(sim, NoRetries).extract, FILES)


def test_wrong_client_without_retries_is_caught_on_a_dropped_connection(sim: Simulator) -> None:
    sim.faults.schedule("helloatlas", "drop", operation="get_bulk_extracts")
    with pytest.raises(ClientCrashed, match="does not survive a dropped connection"):
        sim.run_client(client_for(sim, NoRetries).extract, FILES)


def test_wrong_client_without_retries_is_caught_on_a_cut_off_body(sim: Simulator) -> None:
    sim.faults.schedule("helloatlas", "malformed", operation="get_bulk_extracts")
    with pytest.raises(ClientCrashed, match="does not survive a response body that is not JSON"):
        sim.run_client(client_for(sim, NoRetries).extract, FILES)


@pytest.fixture
def fuzz_sim(bulksim_app: Simulator) -> Simulator:
    return bulksim_app


@fuzz("helloatlas", max_examples=20)
def test_reference_client_survives_any_scenario(fuzz_sim: Simulator, scenario: Scenario) -> None:
    scenario.apply(fuzz_sim)
    results = fuzz_sim.run_client(client_for(fuzz_sim).extract, scenario.input())
    assert list(results) == [str(n) for n in range(1, len(scenario.items) + 1)]
    assert not any(r.pending for r in results.values())
    magic = {"fail", "corrupt", "unknown"}
    failing = [any(f"_{word}." in name for word in magic) for name in scenario.items]
    assert [r.failed for r in results.values()] == failing
    fuzz_sim.assert_client_conformant()


def test_fuzzing_shrinks_a_wrong_client_to_one_fault(fuzz_sim: Simulator) -> None:
    tried: list[Scenario] = []

    # Without Hypothesis's explain phase: it only annotates the report, and takes most of the time.
    @fuzz("helloatlas", max_examples=20, max_faults=2, phases=[Phase.generate, Phase.shrink])
    def check(scenario: Scenario) -> None:
        tried.append(scenario)
        scenario.apply(fuzz_sim)
        crash = None
        try:
            fuzz_sim.run_client(client_for(fuzz_sim, NoRetries).extract, scenario.input())
        except ClientCrashed as exc:
            crash = str(exc)
        if crash is not None:  # one failure wherever it happened, so one smallest scenario
            raise ClientCrashed(crash)

    with pytest.raises(ClientCrashed, match=r"gave up|does not survive"):
        check()
    smallest = tried[-1]
    assert len(smallest.faults) == 1
    assert smallest.faults[0]["count"] == 1
    assert smallest.options == {}
    assert len(smallest.items) == 1

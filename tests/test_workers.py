"""Several processes on one store: ``bulksim serve --workers N``, and two ``bulksim serve`` on
one SQLite file, share tokens, batches and the sequence of ids; ``--workers`` refuses a store
of one process's own."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from simulator.__main__ import main
from simulator.server import http_protocol
from simulator.workers import WorkerProtocol
from tests.conftest import store_url_maker
from tests.dashboard.test_findings import _hot_loop
from tests.test_persistence import CLIENT, STATUS, bulksim, status, submit

FORM = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}


def headers_for(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "x-api-key": CLIENT.client_secret}


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["serve", "--workers", "2"], {}),
        (["serve"], {"BULKSIM_WORKERS": "2"}),
        (["serve", "--workers", "2", "--store", "memory"], {}),
    ],
)
def test_workers_refuse_a_store_of_one_process_own(
    argv: list[str],
    environ: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bulksim: --workers needs a shared store (e.g. --store sqlite:///")
    assert err.count("\n") == 1


def test_workers_serve_on_the_protocol_a_single_server_does() -> None:
    """httptools where it is installed: the pure-Python parser would halve a worker."""
    assert WorkerProtocol is http_protocol()


def test_two_workers_on_one_file_answer_for_each_other(tmp_path: Path) -> None:
    flags = ("--workers", "2", "--store", f"sqlite:///{tmp_path / 'state.db'}")
    with bulksim(*flags, "--time-scale", "0", "--proxy-headers") as (_, origin):
        # uvicorn's options reach every worker (here: X-Forwarded-Proto is taken).
        listing = httpx.get(f"{origin}/_sim/providers", headers={"X-Forwarded-Proto": "https"})
        assert listing.json()["providers"][0]["base_url"].startswith("https://")
        answered: dict[int, list[str]] = {}
        token = request_id = ""
        # A new connection per round lands on either worker; /_sim/health says which one.
        for _ in range(400):
            with httpx.Client(base_url=f"{origin}/deepvue") as deepvue:
                pid = deepvue.get(f"{origin}/_sim/health").json()["pid"]
                if not token:
                    token = deepvue.post("/v1/authorize", data=FORM).json()["access_token"]
                    request_id = submit(deepvue, headers_for(token))
                    answered[pid] = ["authorized", "submitted"]
                elif pid not in answered:
                    done = status(deepvue, headers_for(token), request_id)
                    assert done["status"] == 200
                    output = deepvue.get(str(done["batch_output_file_url"]))
                    assert output.status_code == 200
                    answered[pid] = ["polled", "downloaded"]
            if len(answered) == 2:
                break
        assert sorted(answered.values()) == [["authorized", "submitted"], ["polled", "downloaded"]]


def test_two_servers_on_one_file_share_tokens_batches_and_one_sequence_of_ids(
    tmp_path: Path,
) -> None:
    shared = ("--store", f"sqlite:///{tmp_path / 'state.db'}")
    with (
        bulksim(*shared) as (_, one),
        bulksim(*shared) as (_, two),
        httpx.Client(base_url=f"{one}/deepvue") as first,
        httpx.Client(base_url=f"{two}/deepvue") as second,
    ):
        headers = headers_for(first.post("/v1/authorize", data=FORM).json()["access_token"])
        made = submit(first, headers)
        assert status(second, headers, made)["status"] == 201
        unknown = second.get(STATUS, params={"request_id": "f" * 32}, headers=headers)
        assert unknown.status_code == 422
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda c: submit(c, headers), [first, second] * 12))
    assert len({made, *ids}) == 25
    # The two handed out the first 25 ids of the seed's one sequence between them.
    with (
        bulksim("--store", f"sqlite:///{tmp_path / 'alone.db'}") as (_, alone),
        httpx.Client(base_url=f"{alone}/deepvue") as client,
    ):
        headers = headers_for(client.post("/v1/authorize", data=FORM).json()["access_token"])
        assert {submit(client, headers) for _ in range(25)} == {made, *ids}


def test_two_servers_on_one_store_share_the_clock_and_the_options(shared_url: str) -> None:
    shared = ("--store", shared_url, "--clock", "manual")
    start = ("--start", "2026-03-09T08:00:00Z")
    with bulksim(*shared, *start) as (_, one), bulksim(*shared, *start) as (_, two):

        def advance(origin: str) -> None:
            httpx.post(f"{origin}/_sim/clock/advance", json={"seconds": 60}).raise_for_status()

        advance(one)
        assert httpx.get(f"{two}/_sim/clock").json()["now"] == "2026-03-09T08:01:00Z"
        # Advances made at once on both add up.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(advance, [one, two] * 10))
        for origin in (one, two):
            assert httpx.get(f"{origin}/_sim/clock").json()["now"] == "2026-03-09T08:21:00Z"

        def processing_seconds(origin: str) -> object:
            return httpx.get(f"{origin}/_sim/options").json()["deepvue"]["processing_seconds"]

        change = {"provider": "deepvue", "options": {"processing_seconds": 5}}
        httpx.post(f"{one}/_sim/options", json=change).raise_for_status()
        assert processing_seconds(two) == 5
        httpx.post(f"{two}/_sim/reset", params={"provider": "deepvue"}).raise_for_status()
        assert processing_seconds(one) == 30


def test_after_a_reset_on_one_server_the_other_accepts_its_new_tokens(tmp_path: Path) -> None:
    shared = ("--store", f"sqlite:///{tmp_path / 'state.db'}")
    with (
        bulksim(*shared) as (_, one),
        bulksim(*shared) as (_, two),
        httpx.Client(base_url=f"{one}/deepvue") as first,
        httpx.Client(base_url=f"{two}/deepvue") as second,
    ):
        for _ in range(2):
            headers = headers_for(first.post("/v1/authorize", data=FORM).json()["access_token"])
            made = submit(first, headers)
            assert status(second, headers, made)["status"] == 201
            # A reset forgets every batch and the token key, on both.
            httpx.post(f"{one}/_sim/reset", params={"provider": "deepvue"}).raise_for_status()
            gone = second.get(STATUS, params={"request_id": made}, headers=headers)
            assert gone.status_code == 401


# -- what every process on one shared store sees: faults, the journal, one-shot files --------

SHARED_STORES = ["sqlite:///{tmp}/state.db", "redis"]


@pytest.fixture(params=SHARED_STORES, ids=lambda url: url.partition(":")[0])
def shared_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL naming a fresh, empty store that several processes share (SQLite, Redis)."""
    return store_url_maker(request.param, request, tmp_path_factory)()


def authorize(origin: str) -> int:
    """Deepvue's authorize on ``origin``: its status (a fault's 503, or 200)."""
    return httpx.post(f"{origin}/deepvue/v1/authorize", data=FORM).status_code


def test_a_fault_for_the_next_calls_strikes_exactly_that_often_across_two_servers(
    shared_url: str,
) -> None:
    with bulksim("--store", shared_url) as (_, one), bulksim("--store", shared_url) as (_, two):
        fault = {"provider": "deepvue", "operation": "authorize", "kind": "status", "status": 503}
        scheduled = httpx.post(f"{one}/_sim/faults", json={**fault, "count": 3})
        assert scheduled.status_code == 201, scheduled.text
        # Scheduled on one, it strikes the calls on either, three times in all.
        assert [authorize(origin) for origin in (two, two, one, one, two)] == [
            503,
            503,
            503,
            200,
            200,
        ]
        assert httpx.get(f"{two}/_sim/faults").json()["faults"] == []
        # Many calls at once over both: the count is spent exactly, never twice.
        httpx.post(f"{two}/_sim/faults", json={**fault, "count": 5}).raise_for_status()
        listed = httpx.get(f"{one}/_sim/faults").json()["faults"]
        assert [(f["remaining"], f["hits"]) for f in listed] == [(5, 0)]
        with ThreadPoolExecutor(8) as pool:
            statuses = Counter(pool.map(authorize, [one, two] * 16))
        assert statuses == {503: 5, 200: 27}
        assert httpx.get(f"{one}/_sim/faults").json()["faults"] == []
        # A plan cleared on one is cleared on the other.
        httpx.post(f"{one}/_sim/faults", json={**fault, "count": 9}).raise_for_status()
        assert httpx.delete(f"{two}/_sim/faults").json() == {"cleared": 1}
        assert [authorize(one), authorize(two)] == [200, 200]


def test_the_journal_holds_the_requests_of_both_servers(shared_url: str) -> None:
    with bulksim("--store", shared_url) as (_, one), bulksim("--store", shared_url) as (_, two):
        assert authorize(one) == 200
        entries = httpx.get(f"{two}/_sim/journal").json()["entries"]
        assert [(e["seq"], e["path"], e["response"]["status"]) for e in entries] == [
            (1, "/deepvue/v1/authorize", 200)
        ]
        # Masked as every entry is, and checked against the spec where it is read.
        body = str(entries[0]["request"]["body"])
        assert "client_secret=***" in body
        assert CLIENT.client_secret not in body
        assert entries[0]["violations"] == []
        assert httpx.post(f"{two}/deepvue/v1/authorize", data={}).status_code == 422
        seen = httpx.get(f"{one}/_sim/journal", params={"since": 1}).json()["entries"]
        assert [(e["seq"], e["response"]["status"]) for e in seen] == [(2, 422)]
        # Cleared on one, cleared for both; the numbers keep counting.
        assert httpx.delete(f"{one}/_sim/journal").json() == {"cleared": 2}
        assert httpx.get(f"{two}/_sim/journal").json()["entries"] == []
        assert authorize(two) == 200
        after = httpx.get(f"{one}/_sim/journal").json()["entries"]
        assert [e["seq"] for e in after] == [3]


def test_of_64_creates_with_one_check_file_over_two_servers_exactly_one_is_accepted(
    shared_url: str,
) -> None:
    key = {"Authorization": "Bearer vfy_test_enterprise_5d7b3f9e2a6c"}
    claims = (Path(__file__).parent.parent / "fixtures" / "check" / "claims.csv").read_bytes()
    with bulksim("--store", shared_url) as (_, one), bulksim("--store", shared_url) as (_, two):
        upload = httpx.post(
            f"{one}/check/v1/batch/upload",
            headers=key,
            files={"file": ("claims.csv", claims, "text/csv")},
        )
        assert upload.status_code == 200, upload.text
        body = {"fileId": upload.json()["fileId"], "methods": {"reasoning": 1}}

        def create(origin: str) -> int:
            return httpx.post(f"{origin}/check/v1/batch", headers=key, json=body).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = Counter(pool.map(create, [one, two] * 32))
    assert statuses == {202: 1, 409: 63}


def test_every_worker_s_dashboard_shows_the_behaviour_findings(tmp_path: Path) -> None:
    flags = ("--workers", "2", "--store", f"sqlite:///{tmp_path / 'state.db'}")
    with bulksim(*flags, "--clock", "manual") as (_, origin):
        with httpx.Client(base_url=origin, timeout=30) as http:
            _hot_loop(http)
        pages: dict[int, str] = {}
        # A new connection per round lands on either worker; /_sim/health says which one.
        for _ in range(400):
            with httpx.Client(base_url=origin, timeout=30) as http:
                pid = http.get("/_sim/health").json()["pid"]
                pages.setdefault(pid, http.get("/_sim/ui").text)
            if len(pages) == 2:
                break
        assert len(pages) == 2
        for html in pages.values():
            assert "findings-off" not in html
            assert '<b class="check">hot-poll</b>' in html

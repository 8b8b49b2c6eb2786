"""Several processes on one store: ``bulksim serve --workers N``, and two ``bulksim serve`` on
one SQLite file, share tokens, batches and the sequence of ids; ``--workers`` refuses a store
of one process's own."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from simulator.__main__ import main
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


def test_two_workers_on_one_file_answer_for_each_other(tmp_path: Path) -> None:
    flags = ("--workers", "2", "--store", f"sqlite:///{tmp_path / 'state.db'}")
    with bulksim(*flags, "--time-scale", "0") as (_, origin):
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


def test_two_servers_on_one_file_share_the_clock_and_the_options(tmp_path: Path) -> None:
    shared = ("--store", f"sqlite:///{tmp_path / 'state.db'}", "--clock", "manual")
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

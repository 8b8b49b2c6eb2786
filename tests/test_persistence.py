"""A served simulator on a SQLite file loses nothing a client was answered when it dies.

``bulksim serve --store sqlite:///...`` is killed with SIGKILL (no shutdown, no flush) part
way through a Deepvue batch and started again on the same file: the batch, the token, the id
counter, the options changed at run time and the clock (the manual instant it was moved to)
are all still there.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from simulator.providers.deepvue.models import TEST_CLIENTS

CLIENT = TEST_CLIENTS[0]
SUBMIT = "/v1/verification/upi-basic/batch"
STATUS = "/v1/verification/batch-processing-status"
CSV = b"vpa\nrahul@okaxis\npriya@oksbi\n"


@contextmanager
def bulksim(*flags: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``bulksim serve --port 0 FLAGS`` in a process of its own; yields it and its origin."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--port", "0", "--access-log", "off", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    try:
        assert first.startswith("bulksim serving on "), first + process.communicate()[1]
        yield process, first.split()[3]
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)


def submit(deepvue: httpx.Client, headers: dict[str, str]) -> str:
    files = {"batch_file": ("vpas.csv", CSV, "text/csv")}
    response = deepvue.post(SUBMIT, headers=headers, files=files)
    assert response.status_code == 201, response.text
    return str(response.json()["request_id"])


def status(deepvue: httpx.Client, headers: dict[str, str], request_id: str) -> dict[str, object]:
    response = deepvue.get(STATUS, params={"request_id": request_id}, headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def test_kill_9_mid_batch_then_restart_on_the_file_keeps_batch_token_clock_and_ids(
    tmp_path: Path,
) -> None:
    flags = (
        "--store",
        f"sqlite:///{tmp_path / 'state.db'}",
        "--clock",
        "manual",
        "--start",
        "2026-03-09T08:00:00Z",
    )
    with bulksim(*flags) as (process, origin), httpx.Client(base_url=f"{origin}/deepvue") as dv:
        options = {"provider": "deepvue", "options": {"processing_seconds": 7200}}
        httpx.post(f"{origin}/_sim/options", json=options).raise_for_status()
        form = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}
        token = dv.post("/v1/authorize", data=form).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "x-api-key": CLIENT.client_secret}
        first = submit(dv, headers)
        httpx.post(f"{origin}/_sim/clock/advance", json={"seconds": 3600}).raise_for_status()
        assert status(dv, headers, first)["status"] == 201  # half way
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    with bulksim(*flags) as (_, origin), httpx.Client(base_url=f"{origin}/deepvue") as dv:
        # The clock is where it was moved to, not at --start again; the option is as set.
        assert httpx.get(f"{origin}/_sim/clock").json()["now"] == "2026-03-09T09:00:00Z"
        assert httpx.get(f"{origin}/_sim/options").json()["deepvue"]["processing_seconds"] == 7200
        # The token issued before the crash is still valid; the batch is still running.
        assert status(dv, headers, first)["status"] == 201
        # The id counter went on: a new batch does not get the first one's id.
        second = submit(dv, headers)
        assert second != first
        # Past the batch's end (7200 s, and a little for each row).
        httpx.post(f"{origin}/_sim/clock/advance", json={"seconds": 3601}).raise_for_status()
        done = status(dv, headers, first)
        assert done["status"] == 200
        output = httpx.get(str(done["batch_output_file_url"]))
        assert output.status_code == 200
        assert output.text.count("@") == 2

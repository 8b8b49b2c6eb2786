"""The dashboard's page as plain HTTP sees it: what a browser with JavaScript off shows."""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app, gateway
from simulator.dashboard.resources import PER_PROVIDER
from simulator.providers.check.models import SEED_COMPLETED, SEED_FILE_ID, SEED_IN_PROGRESS
from simulator.providers.deepvue.models import SEED_COMPLETED as DEEPVUE_SEED_COMPLETED
from simulator.providers.deepvue.models import SEED_IN_PROGRESS as DEEPVUE_SEED_IN_PROGRESS
from simulator.providers.helloatlas.models import EXAMPLE_BATCH_ID, SEED_BATCH_ID
from simulator.providers.passcreator.fakes import SEED_PROCESS as PASSCREATOR_SEED
from simulator.providers.passcreator.fakes import SEED_PROCESS_DONE as PASSCREATOR_SEED_DONE
from simulator.providers.passcreator.fakes import SEED_PROCESS_TOTAL as PASSCREATOR_SEED_TOTAL
from tests.conftest import AppFactory, advance
from tests.dashboard import flows

UI = "/_sim/ui"


def page(client: TestClient, query: str = "", **headers: str) -> str:
    response = client.get(f"{UI}{query}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    return text


def resource_row(html: str, resource_id: str) -> str:
    match = re.search(
        rf'<tr class="resource" data-id="{re.escape(resource_id)}".*?</tr>', html, re.S
    )
    assert match, f"{resource_id} not on the page"
    return match.group(0)


def progress(row: str) -> tuple[int, int]:
    match = re.search(r'<progress value="(\d+)" max="(\d+)"', row)
    assert match, row
    return int(match.group(1)), int(match.group(2))


def test_every_section_is_rendered_on_the_server(client: TestClient) -> None:
    html = page(client)
    sections = ("providers", "clock", "sandboxes", "resources", "faults", "webhooks", "plots")
    for section in (*sections, "journal"):
        assert f'<section id="{section}">' in html
    for name in ("check", "deepvue", "helloatlas", "passcreator"):
        assert f"http://testserver/{name}</code>" in html
        assert f'href="http://testserver/{name}/openapi.json"' in html
    assert '<time id="clock-now" datetime="2026-03-09T08:14:08Z">' in html
    assert 'id="clock-kind">manual<' in html
    assert "No request recorded." in html
    assert "No fault armed." in html


def test_a_batch_and_its_progress_show_without_javascript(client: TestClient) -> None:
    batch_id = flows.check_batch(client)
    html = page(client)
    row = resource_row(html, batch_id)
    assert '<td class="status">processing</td>' in row
    assert progress(row) == (0, 3)
    assert f'href="/check/v1/batch/{batch_id}/results"' in row
    assert f'href="/check/v1/batch/{batch_id}"' in row
    assert "ready at" in row
    assert "<polyline" in row  # items done over simulated time, as Check schedules them
    assert 'data-operation="create_batch"' in html

    # No poll in between: the page reads the batch from the store, on the clock.
    advance(client, 3600)
    row = resource_row(page(client), batch_id)
    assert '<td class="status">completed</td>' in row
    assert progress(row) == (3, 3)
    assert "ready at" not in row


def test_every_providers_batches_processes_and_files_are_shown(client: TestClient) -> None:
    check_batch = flows.check_batch(client)
    deepvue = flows.deepvue_headers(client)
    request_id = flows.deepvue_batch(client, deepvue)
    process = flows.passcreator_process(client, passes=2)
    atlas = flows.helloatlas_headers(client)
    atlas_batch = flows.helloatlas_batch(client, atlas)
    html = page(client)
    assert "batch processing in progress" in resource_row(html, request_id)
    assert "output file</a>" not in resource_row(html, request_id)
    assert progress(resource_row(html, process)) == (0, 2)
    assert progress(resource_row(html, atlas_batch)) == (0, 2)
    advance(client, 3600)

    html = page(client)
    assert "batch processing completed" in resource_row(html, request_id)
    assert (
        f'href="/deepvue/bulk-data-processing/upi-basic-batch-output-files/{request_id}.csv">'
        "output file</a>"
    ) in resource_row(html, request_id)
    assert progress(resource_row(html, process)) == (2, 2)
    assert f'href="/passcreator/api/v3/process/{process}"' in resource_row(html, process)
    assert progress(resource_row(html, atlas_batch)) == (2, 2)
    assert f'href="/helloatlas/v1/bulk/extracts?batch_id={atlas_batch}"' in resource_row(
        html, atlas_batch
    )
    assert progress(resource_row(html, check_batch)) == (3, 3)  # never polled: the clock moved
    checks = re.findall(r'<tr class="resource" data-id="([^"]+)" data-provider="check">', html)
    # the batches, newest first (the documentation's two last), then the fileIds alike
    assert len(checks) == 5
    assert checks[:3] == [check_batch, SEED_IN_PROGRESS, SEED_COMPLETED]
    assert checks[4] == SEED_FILE_ID
    assert '<td class="status">used</td>' in resource_row(html, checks[3])  # the batch's file


def test_the_seeded_examples_show_without_any_poll(client: TestClient) -> None:
    html = page(client)
    assert "No request recorded." in html
    for seed in (
        SEED_COMPLETED,
        SEED_IN_PROGRESS,
        SEED_FILE_ID,
        DEEPVUE_SEED_COMPLETED,
        DEEPVUE_SEED_IN_PROGRESS,
        PASSCREATOR_SEED,
        SEED_BATCH_ID,
        EXAMPLE_BATCH_ID,
    ):
        resource_row(html, seed)
    row = resource_row(html, PASSCREATOR_SEED)
    assert '<td class="status">in progress</td>' in row
    assert progress(row) == (PASSCREATOR_SEED_DONE, PASSCREATOR_SEED_TOTAL)
    assert '<td class="status">live</td>' in resource_row(html, SEED_FILE_ID)
    assert '<td class="status">completed</td>' in resource_row(html, SEED_COMPLETED)


def test_a_deepvue_batch_shows_its_progress_and_when_it_is_ready(client: TestClient) -> None:
    request_id = flows.deepvue_batch(client, flows.deepvue_headers(client))
    # 30 s of processing and 0.01 s for each of its two rows, from now (08:14:08)
    ready = "2026-03-09T08:14:38Z"
    row = resource_row(page(client), request_id)
    assert progress(row) == (0, 2)
    assert f'ready at\n        <time datetime="{ready}">' in row
    assert "batch processing in progress" in row
    advance(client, 30)
    assert progress(resource_row(page(client), request_id)) == (0, 2)  # 30.02 s: not yet
    advance(client, 1)
    row = resource_row(page(client), request_id)
    assert progress(row) == (2, 2)
    assert "batch processing completed" in row


def test_a_check_file_id_shows_as_live_then_used(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {flows.CHECK_KEY}"}
    upload = client.post(
        "/check/v1/batch/upload", headers=auth, files={"file": ("c.csv", flows.CSV, "text/csv")}
    )
    file_id = upload.json()["fileId"]
    row = resource_row(page(client), file_id)
    assert '<td class="status">live</td>' in row
    assert '<span class="count">? / 3</span>' in row
    assert f"<td>{upload.json()['expiresAt']}</td>" in row
    created = client.post("/check/v1/batch", headers=auth, json={"fileId": file_id})
    assert created.status_code == 202
    html = page(client)
    assert '<td class="status">used</td>' in resource_row(html, file_id)
    resource_row(html, created.json()["id"])


def test_the_next_due_event_is_the_soonest_unfinished_batch(client: TestClient) -> None:
    """What the clock's "to the next due event" button does: set the clock to the instant the
    page names, after which that batch, and no later one, is finished."""
    flows.deepvue_batch(client, flows.deepvue_headers(client))  # ready at 08:14:38.02
    process = flows.passcreator_process(client, passes=2)  # ready at 08:14:08.04
    html = page(client)
    due = re.search(r'<p id="next-due" data-due="([^"]+)">Next due: <code>([^<]+)</code>', html)
    assert due, html
    assert due.group(2) == process
    assert due.group(1) == "2026-03-09T08:14:08.040000+00:00"
    assert progress(resource_row(html, process)) == (0, 2)
    assert client.post("/_sim/clock/set", json={"now": due.group(1)}).status_code == 200
    html = page(client)
    assert progress(resource_row(html, process)) == (2, 2)
    assert '<td class="status">finished</td>' in resource_row(html, process)
    # the next one is later: the seeded in-progress batches and the Deepvue one
    after = re.search(r'<p id="next-due" data-due="([^"]+)"', html)
    assert after
    assert after.group(1) > due.group(1)


def test_each_provider_shows_its_newest_resources_only(client: TestClient) -> None:
    made = [flows.passcreator_process(client, passes=1) for _ in range(PER_PROVIDER + 1)]
    html = page(client)
    shown = re.findall(r'<tr class="resource" data-id="([^"]+)" data-provider="passcreator">', html)
    assert shown == made[::-1][:PER_PROVIDER]  # newest first; neither the oldest nor the seed


def test_secrets_never_reach_the_page(client: TestClient) -> None:
    headers = flows.deepvue_headers(client)
    flows.deepvue_batch(client, headers)
    flows.check_batch(client)
    flows.passcreator_process(client)
    flows.helloatlas_batch(client, flows.helloatlas_headers(client))
    token = headers["Authorization"].removeprefix("Bearer ")
    html = page(client)
    for secret in (*flows.SECRETS, token):
        assert secret not in html
        assert secret not in client.get(f"{UI}/live").text
    assert "client_secret=***4c1a" in html  # the authorize body, masked as the journal masks it
    assert "x-api-key: ***4c1a" in html
    assert f"authorization: Bearer ***{token[-4:]}" in html
    # The credentials are listed masked; ids are shown as they are.
    assert "<code>deepvue_test_client</code>" in html
    assert '<code class="secret">***4c1a</code>' in html


def test_the_journal_filters_by_provider_and_operation(client: TestClient) -> None:
    flows.check_batch(client)
    flows.passcreator_process(client)
    html = page(client, "?provider=check")
    assert 'data-provider="check" data-operation="upload_batch_file"' in html
    assert 'data-provider="passcreator" data-operation="create_pass"' not in html
    html = page(client, "?operation=create_pass")
    assert re.findall(r'<li class="entry[^"]*"\s+data-seq="(\d+)"', html) == ["3"]
    assert re.findall(r'<li class="entry[^"]*"\s+data-seq="(\d+)"', page(client, "?rows=1")) == [
        "3"
    ]
    # newest first
    assert re.findall(r'<li class="entry[^"]*"\s+data-seq="(\d+)"', page(client)) == ["3", "2", "1"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?provider=nobody", "unknown provider 'nobody'"),
        ("?operation=fly", "unknown operation 'fly'"),
        ("?rows=0", "rows must be a whole number"),
        ("?rows=many", "rows must be a whole number"),
    ],
)
def test_bad_filters_get_a_clear_answer(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"{UI}{query}")
    assert response.status_code == 400
    assert message in response.text
    live = client.get(f"{UI}/live{query}")
    assert live.status_code == 400
    assert message in live.json()["error"]
    assert client.get(f"{UI}/live?since=x").json() == {"error": "since must be a sequence number"}
    assert client.get(f"{UI}?check=some").status_code == 400
    assert "sequence numbers" in client.get(f"{UI}/live?check=4,x").json()["error"]


def test_spec_violations_and_faults_are_highlighted(client: TestClient) -> None:
    fault = {
        "provider": "check",
        "operation": "get_batch",
        "kind": "error",
        "error": "BatchNotFound",
    }
    assert client.post("/_sim/faults", json=fault).status_code == 201
    html = page(client)
    assert re.search(r'<tr class="fault" data-id="1">.*?BatchNotFound', html, re.S)
    batch_id = flows.check_batch(client)
    assert flows.check_poll(client, batch_id).status_code == 404
    # A create without the body the spec requires
    bad = client.post(
        "/check/v1/batch", headers={"Authorization": f"Bearer {flows.CHECK_KEY}"}, content=b"{}"
    )
    assert bad.status_code == 422
    html = page(client)
    assert "No fault armed." in html  # spent
    struck = re.search(r'<li class="entry failed unchecked"\s+data-seq="3".*?</li>', html, re.S)
    assert struck
    assert "fault error:BatchNotFound" in struck.group(0)
    assert '<span class="status">404</span>' in struck.group(0)
    # The page does not wait for the spec: the rows not checked yet say so, and link to the
    # page checked (for a browser without JavaScript).
    pending = re.search(
        r'<li class="entry failed unchecked"\s+data-seq="4".*?</details>', html, re.S
    )
    assert pending
    assert '<a class="badge unchecked" href="?check=all#journal">' in pending.group(0)
    assert "spec violation" not in pending.group(0)

    checked = page(client, "?check=all")
    violating = re.search(
        r'<li class="entry violation failed"\s+data-seq="4".*?</details>', checked, re.S
    )
    assert violating
    assert "spec violation" in violating.group(0)
    assert "unchecked" not in checked
    # What was found is kept: the next load shows it at once.
    assert violating.group(0) in page(client)


def test_live_checks_the_rows_the_page_has_not(client: TestClient) -> None:
    flows.check_batch(client)
    bad = client.post(
        "/check/v1/batch", headers={"Authorization": f"Bearer {flows.CHECK_KEY}"}, content=b"{}"
    )
    assert bad.status_code == 422
    html = page(client, "?provider=check")
    assert len(re.findall(r'class="entry[^"]* unchecked"', html)) == 3
    assert 'href="?provider=check&amp;check=all#journal"' in html
    live = client.get(f"{UI}/live?since=3&provider=check&check=1,3").json()
    assert live["rows"].strip() == ""
    assert set(live["checked"]) == {"1", "3"}
    assert re.match(r'\s*<li class="entry violation failed"\s+data-seq="3"', live["checked"]["3"])
    assert "spec violation" in live["checked"]["3"]
    assert "unchecked" not in live["checked"]["1"]
    # Row 2 was not asked for: still to be checked. The rows live gives anew are checked.
    assert re.search(r'class="entry unchecked"\s+data-seq="2"', page(client))
    flows.check_batch(client)
    new = client.get(f"{UI}/live?since=3").json()
    assert new["rows"].count('<li class="entry') == 2
    assert "unchecked" not in new["rows"]


def test_live_gives_the_rows_after_since_and_the_sections(client: TestClient) -> None:
    flows.check_batch(client)
    first = client.get(f"{UI}/live").json()
    assert first["last"] == 2
    assert set(first["sections"]) == {
        "providers",
        "clock",
        "sandboxes",
        "resources",
        "faults",
        "webhooks",
        "plots",
    }
    assert first["rows"].count('<li class="entry') == 2
    flows.passcreator_process(client)
    advance(client, 60)
    later = client.get(f"{UI}/live?since=2").json()
    assert later["last"] == 3
    assert later["rows"].count('<li class="entry') == 1
    assert 'data-operation="create_pass"' in later["rows"]
    assert "providers" not in later["sections"]
    assert "2026-03-09T08:15:08Z" in later["sections"]["clock"]
    nothing = client.get(f"{UI}/live?since=3").json()
    assert nothing["last"] == 3
    assert nothing["rows"].strip() == ""


def test_the_page_loads_only_its_own_script_and_stylesheet(client: TestClient) -> None:
    response = client.get(UI)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    sources = re.findall(r'(?:src|href)="([^"#]+)"', response.text)
    external = [
        s for s in sources if s.startswith("http") and not s.startswith("http://testserver")
    ]
    assert external == []
    for asset in ("dashboard.js", "dashboard.css"):
        assert client.get(f"{UI}/static/{asset}").status_code == 200
    assert "fetch(" in client.get(f"{UI}/static/dashboard.js").text


def test_with_a_control_token_the_page_holds_no_data_until_given_it(
    app_factory: AppFactory,
) -> None:
    app = app_factory(control_token="s3cret-token-for-ui")
    with TestClient(app) as client:
        flows.check_batch(client)
        html = page(client)
        assert 'id="token-form"' in html
        assert 'id="locked-note"' in html
        assert "http://testserver/check</code>" not in html
        assert 'data-operation="create_batch"' not in html
        assert "s3cret-token-for-ui" not in html
        assert client.get(f"{UI}/live").status_code == 401
        assert client.get(f"{UI}/live", headers={"X-Bulksim-Token": "wrong"}).status_code == 401

        unlocked = client.get(f"{UI}/live", headers={"X-Bulksim-Token": "s3cret-token-for-ui"})
        assert unlocked.status_code == 200
        assert 'data-operation="create_batch"' in unlocked.json()["rows"]
        assert "http://testserver/check</code>" in unlocked.json()["sections"]["providers"]
        html = page(client, Authorization="Bearer s3cret-token-for-ui")
        assert 'id="locked-note"' not in html
        assert 'data-operation="create_batch"' in html
        assert "s3cret-token-for-ui" not in html


def test_the_page_costs_provider_requests_nothing(app: Starlette) -> None:
    """No dashboard code runs on a provider's request: it is read only when the page is."""
    calls: list[str] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and "simulator/dashboard" in frame.f_code.co_filename.replace("\\", "/"):
            calls.append(frame.f_code.co_name)

    with profiling(profile), TestClient(app) as client:
        batch_id = flows.check_batch(client)
        flows.check_poll(client, batch_id)
        flows.passcreator_process(client)
        assert calls == []
        page(client)
    assert "live_resources" in calls


@contextlib.contextmanager
def profiling(function: Any) -> Iterator[None]:
    """``function`` sees every call in this thread and in the threads started meanwhile."""
    sys.setprofile(function)
    threading.setprofile(function)
    try:
        yield
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


class Stopwatch:
    """Stands in for the gateway's ``perf_counter``: it moves only when the simulator sleeps
    (a ``latency`` fault), so each request takes exactly the latency it was given."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds

    async def sleep(self, seconds: float) -> None:
        self.seconds += seconds


def test_each_request_s_duration_is_journaled_and_drawn_by_operation(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = Stopwatch()
    monkeypatch.setattr(gateway, "perf_counter", watch)
    app = create_app(Settings(seed=7), clock=clock, sleep=watch.sleep)
    with TestClient(app) as client:
        assert "Latency by operation: no request answered yet." in page(client)
        batch_id = flows.check_batch(client)
        fault = {"provider": "check", "operation": "get_batch", "kind": "latency"}
        armed = client.post("/_sim/faults", json=fault | {"latency_ms": 500, "count": 1})
        assert armed.status_code == 201, armed.text
        for _ in range(4):
            assert flows.check_poll(client, batch_id).status_code == 200
        journal = client.get("/_sim/journal?operation=get_batch").json()["entries"]
        assert [e["duration_ms"] for e in journal] == [500.0, 0.0, 0.0, 0.0]
        html = page(client)
    assert "check.get_batch: p50 0.00 ms, p99 500.00 ms (4 requests)" in html
    assert "check.create_batch: p50 0.00 ms, p99 0.00 ms (1 request)" in html
    # Newest first: the oldest poll, the one that waited, is the last row.
    rows = re.findall(r'data-operation="get_batch">.*?<span class="duration">([^<]*)<', html, re.S)
    assert rows == ["0.00 ms", "0.00 ms", "0.00 ms", "500.00 ms"]

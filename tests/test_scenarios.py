"""Scenarios: a sandbox (or the default one, with ``bulksim serve --scenario``) starting from
a declarative file, its objects standing where the file says at its start instant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.testclient import TestClient

from simulator import Settings, create_app
from simulator.__main__ import main
from simulator.providers.check.models import KEYS_BY_PLAN
from simulator.providers.helloatlas.models import TEST_CLIENTS as HELLOATLAS_CLIENTS
from simulator.providers.passcreator.models import TEST_ACCOUNTS
from simulator.scenarios import ScenarioError, load_scenario, parse_scenario
from tests.conftest import START, store_url_maker
from tests.providers.deepvue.conftest import CLIENT
from tests.test_persistence import bulksim
from tests.test_workers import SHARED_STORES

SCENARIOS = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
STATUS = "/deepvue/v1/verification/batch-processing-status"
CHECK_AUTH = {"Authorization": f"Bearer {KEYS_BY_PLAN['pro']}"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(Settings(clock="manual", start=START, seed=7))
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def scenario(name: str) -> Any:
    return yaml.safe_load((SCENARIOS / name).read_text())


def sandbox(client: TestClient, name: str) -> tuple[str, str]:
    """A sandbox started from the fixture: its base path and control path."""
    response = client.post("/_sim/sandboxes", json={"scenario": scenario(name)})
    assert response.status_code == 201, response.text
    sandbox_id = response.json()["id"]
    return f"/sandboxes/{sandbox_id}", f"/_sim/sandboxes/{sandbox_id}"


def deepvue_headers(client: TestClient, base: str) -> dict[str, str]:
    response = client.post(
        f"{base}/deepvue/v1/authorize",
        data={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return {"Authorization": f"Bearer {token}", "x-api-key": CLIENT.client_secret}


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.iterdir()))
def test_every_example_scenario_but_the_bad_one_loads(client: TestClient, name: str) -> None:
    response = client.post("/_sim/sandboxes", json={"scenario": scenario(name)})
    if name.startswith("bad-"):
        assert response.status_code == 400, response.text
    else:
        assert response.status_code == 201, response.text
        clock = client.get(f"/_sim/sandboxes/{response.json()['id']}/clock").json()
        assert clock["now"] == scenario(name)["start"]


def test_a_deepvue_batch_stands_at_its_progress_and_finishes_after_the_rest(
    client: TestClient,
) -> None:
    # 100 s of processing plus 0.01 s a row for two rows: 100.02 s; 40% done at start.
    base, control = sandbox(client, "deepvue-batch-40-percent.yaml")
    headers = deepvue_headers(client, base)
    [request_id] = _batch_ids(client, control)
    poll = client.get(f"{base}{STATUS}", params={"request_id": request_id}, headers=headers)
    assert poll.json()["data"]["status"] == 201, poll.text
    # 60% of 100.02 s remain: 60.012 s.
    advance = client.post(f"{control}/clock/advance", json={"seconds": 60.0})
    assert advance.status_code == 200
    poll = client.get(f"{base}{STATUS}", params={"request_id": request_id}, headers=headers)
    assert poll.json()["data"]["status"] == 201, poll.text
    client.post(f"{control}/clock/advance", json={"seconds": 0.012})
    poll = client.get(f"{base}{STATUS}", params={"request_id": request_id}, headers=headers)
    assert poll.json()["data"]["status"] == 200, poll.text


def _batch_ids(client: TestClient, control: str) -> list[str]:
    """The Deepvue batches a sandbox's store holds (its snapshot's records)."""
    records = client.get(f"{control}/snapshot").json()["store"]["records"]
    return [key for table, key, *_ in records if table == "deepvue/batches"]


def test_a_check_file_id_works_once_and_expires_at_the_stated_instant(
    client: TestClient,
) -> None:
    # Uploaded 3540 s before start, a pro fileId (3600 s to live) has 60 s left.
    base, control = sandbox(client, "check-file-about-to-expire.yaml")
    records = client.get(f"{control}/snapshot").json()["store"]["records"]
    first, second = sorted(key for table, key, *_ in records if table == "check/files")
    used = client.post(f"{base}/check/v1/batch", headers=CHECK_AUTH, json={"fileId": first})
    assert used.status_code == 202, used.text
    again = client.post(f"{base}/check/v1/batch", headers=CHECK_AUTH, json={"fileId": first})
    assert again.status_code != 202, again.text
    client.post(f"{control}/clock/advance", json={"seconds": 60})
    late = client.post(f"{base}/check/v1/batch", headers=CHECK_AUTH, json={"fileId": second})
    assert late.status_code != 202, late.text
    assert "expire" in late.text.lower(), late.text


def test_a_scenario_s_faults_are_scheduled_after_its_objects(client: TestClient) -> None:
    base, _ = sandbox(client, "faults.json")
    body = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}
    assert client.post(f"{base}/deepvue/v1/authorize", data=body).status_code == 503
    assert client.post(f"{base}/deepvue/v1/authorize", data=body).status_code == 200


def test_a_scenario_with_a_bad_field_is_refused_naming_it(client: TestClient) -> None:
    response = client.post("/_sim/sandboxes", json={"scenario": scenario("bad-progress.yaml")})
    assert response.status_code == 400
    assert response.json()["error"] == (
        "scenario.objects[0].progress: 1.4 is greater than the maximum of 1"
    )
    assert client.get("/_sim/sandboxes").json()["live"] == 0


def test_serve_refuses_a_bad_scenario_file_naming_its_line_and_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = SCENARIOS / "bad-progress.yaml"
    assert main(["serve", "--scenario", str(path), "--port", "0"]) == 2
    assert capsys.readouterr().err == (
        "bulksim: bad-progress.yaml:5: objects[0].progress: 1.4 is greater than the maximum of 1\n"
    )


def test_the_scenario_schema_is_served(client: TestClient) -> None:
    response = client.get("/_sim/scenario.schema.json")
    assert response.status_code == 200
    assert response.json()["title"] == "bulksim scenario"


def _keys(client: TestClient, control: str, table: str) -> list[str]:
    """The keys of one table of a sandbox's store (its snapshot's records)."""
    records = client.get(f"{control}/snapshot").json()["store"]["records"]
    return sorted(key for name, key, *_ in records if name == table)


PASSCREATOR_KEY = TEST_ACCOUNTS[0].api_key


def test_a_passcreator_process_stands_at_250_of_1000_and_finishes_after_the_rest(
    client: TestClient,
) -> None:
    # 50 items a second: 750 items remain, 15 s; item 1000 is reached at exactly 15 s.
    base, control = sandbox(client, "passcreator-process-250-of-1000.yaml")
    [process_id] = _keys(client, control, "passcreator/processes")
    url = f"{base}/passcreator/api/v3/process/{process_id}"
    headers = {"Authorization": PASSCREATOR_KEY}
    poll = client.get(url, headers=headers).json()["data"]
    assert (poll["current"], poll["total"], poll["status"]) == (250, 1000, "in progress")
    assert poll["createdOn"] == "2026-03-01 08:59:55"
    client.post(f"{control}/clock/advance", json={"seconds": 14.98})
    poll = client.get(url, headers=headers).json()["data"]
    assert (poll["current"], poll["status"]) == (999, "in progress")
    client.post(f"{control}/clock/advance", json={"seconds": 0.02})
    poll = client.get(url, headers=headers).json()["data"]
    assert (poll["current"], poll["status"]) == (1000, "finished")


def helloatlas_token(client: TestClient, base: str) -> dict[str, str]:
    account = HELLOATLAS_CLIENTS[0]
    response = client.post(
        f"{base}/helloatlas/v1/bulk/authtoken",
        headers={"Client-Id": account.client_id, "Client-Secret": account.client_secret},
    )
    assert response.status_code == 201, response.text
    return {"Token": response.json()["access_token"]}


def _extracts(client: TestClient, base: str, headers: dict[str, str], batch_id: str) -> Any:
    url = f"{base}/helloatlas/v1/bulk/extracts"
    response = client.get(url, params={"batch_id": batch_id}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_helloatlas_batch_still_processing_has_its_types_and_finishes_in_the_window(
    client: TestClient,
) -> None:
    base, control = sandbox(client, "helloatlas-batch-processing.yaml")
    headers = helloatlas_token(client, base)
    [batch_id] = _keys(client, control, "helloatlas/batches")
    assert batch_id.endswith("-20260301090000")  # uploaded at the start instant
    page = _extracts(client, base, headers, batch_id)
    assert page["total_items"] == 6
    assert [d["file_data"] for d in page["data"]] == [None] * 6
    # Documents finish 5 to 30 s after upload (the default window).
    client.post(f"{control}/clock/advance", json={"seconds": 30})
    page = _extracts(client, base, headers, batch_id)
    types = [d["file_data"]["document_type"] for d in page["data"]]
    assert types == ["AADHAAR", "PAN", "PASSPORT"] * 2


def test_a_helloatlas_batch_done_is_extracted_at_start(client: TestClient) -> None:
    base, control = sandbox(client, "helloatlas-batch-done.yaml")
    headers = helloatlas_token(client, base)
    [batch_id] = _keys(client, control, "helloatlas/batches")
    assert batch_id.endswith("-20260301085930")  # 30 s, the processing window, before start
    page = _extracts(client, base, headers, batch_id)
    types = [d["file_data"]["document_type"] for d in page["data"]]
    assert types == ["AADHAAR", "PAN", "DRIVING_LICENSE", "VOTER_ID", "PASSPORT", "GST_CERT"]


def test_a_process_done_beyond_its_total_is_refused_naming_the_field(client: TestClient) -> None:
    response = client.post(
        "/_sim/sandboxes", json={"scenario": scenario("bad-done-over-total.yaml")}
    )
    assert response.status_code == 400
    assert response.json()["error"] == (
        "scenario.objects[0].done: 1200 is greater than total (1000)"
    )
    with pytest.raises(ScenarioError) as raised:
        load_scenario(str(SCENARIOS / "bad-done-over-total.yaml"))
    assert str(raised.value) == (
        "bad-done-over-total.yaml:6: objects[0].done: 1200 is greater than total (1000)"
    )


def test_an_unknown_document_type_is_refused_naming_its_line(client: TestClient) -> None:
    text = "clock: manual\nobjects:\n  - kind: helloatlas.batch\n    types: [AADHAAR, CHEQUE]\n"
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(text, "kyc.yaml")
    assert str(raised.value).startswith("kyc.yaml:4: objects[0].types[1]: 'CHEQUE' is not one of")


# -- one scenario on every store backend, and over two worker processes --------------------

Get = Callable[..., Any]
Post = Callable[..., Any]


def morning_transcript(get: Get, post: Post, base: str, control: str) -> list[object]:
    """What a client sees of ``morning-on-four-providers.yaml`` at its start and 30 s later:
    each object where the scenario says, then finished (each request on its own, so that
    a served app's workers may answer any of them)."""
    records = get(f"{control}/snapshot").json()["store"]["records"]

    def key(table: str) -> str:
        [found] = [k for name, k, *_ in records if name == table]
        return str(found)

    seen: list[object] = []
    deepvue = deepvue_auth(post, base)
    atlas = HELLOATLAS_CLIENTS[0]
    minted = post(
        f"{base}/helloatlas/v1/bulk/authtoken",
        headers={"Client-Id": atlas.client_id, "Client-Secret": atlas.client_secret},
    )
    token = {"Token": minted.json()["access_token"]}
    process = f"{base}/passcreator/api/v3/process/{key('passcreator/processes')}"
    passcreator = {"Authorization": PASSCREATOR_KEY}
    seen.append(get(process, headers=passcreator).status_code)  # the scenario's fault

    def look() -> None:
        batch = get(
            f"{base}{STATUS}",
            params={"request_id": key("deepvue/batches")},
            headers=deepvue,
        )
        seen.append(batch.json()["data"]["status"])
        data = get(process, headers=passcreator).json()["data"]
        seen.append((data["current"], data["total"], data["status"]))
        page = get(
            f"{base}/helloatlas/v1/bulk/extracts",
            params={"batch_id": key("helloatlas/batches")},
            headers=token,
        ).json()
        seen.append([(d["file_data"] or {}).get("document_type") for d in page["data"]])

    look()
    seen.append(post(f"{control}/clock/advance", json={"seconds": 30}).json()["now"])
    look()
    used = post(
        f"{base}/check/v1/batch",
        headers=CHECK_AUTH,
        json={"fileId": key("check/files")},
    )
    seen.append(used.status_code)
    return seen


MORNING = [
    503,
    201,
    (250, 1000, "in progress"),
    [None, None, None, None],
    "2026-03-01T09:00:30Z",
    200,
    (1000, 1000, "finished"),
    ["PAN", "GST_CERT", "PAN", "GST_CERT"],
    202,
]


def deepvue_auth(post: Post, base: str) -> dict[str, str]:
    response = post(
        f"{base}/deepvue/v1/authorize",
        data={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return {"Authorization": f"Bearer {token}", "x-api-key": CLIENT.client_secret}


def test_a_scenario_started_sandbox_answers_the_same_on_every_store(store_url: str) -> None:
    app = create_app(Settings(clock="manual", start=START, seed=7, store=store_url))
    with TestClient(app, base_url="http://testserver") as client:
        base, control = sandbox(client, "morning-on-four-providers.yaml")
        assert morning_transcript(client.get, client.post, base, control) == MORNING
    assert not app.state.sim.crashes, list(app.state.sim.crashes)


@pytest.fixture(params=SHARED_STORES, ids=lambda url: url.partition(":")[0])
def shared_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL naming a fresh, empty store that several processes share (SQLite, Redis)."""
    return store_url_maker(request.param, request, tmp_path_factory)()


def test_a_scenario_started_sandbox_answers_the_same_from_two_workers(shared_url: str) -> None:
    flags = ("--workers", "2", "--store", shared_url, "--clock", "manual")
    with bulksim(*flags) as (_, origin):
        body = {"scenario": scenario("morning-on-four-providers.yaml")}
        made = httpx.post(f"{origin}/_sim/sandboxes", json=body, timeout=60)
        assert made.status_code == 201, made.text
        sandbox_id = made.json()["id"]
        base, control = f"{origin}/sandboxes/{sandbox_id}", f"{origin}/_sim/sandboxes/{sandbox_id}"
        # A module-level httpx call opens a connection of its own: either worker answers it.
        assert morning_transcript(httpx.get, httpx.post, base, control) == MORNING
        # Both workers answer for the sandbox, with its clock where it was moved to.
        answered: dict[int, object] = {}
        for _ in range(400):
            pid = httpx.get(f"{origin}/_sim/health").json()["pid"]
            answered[pid] = httpx.get(f"{control}/clock").json()["now"]
            if len(answered) == 2:
                break
        assert list(answered.values()) == ["2026-03-01T09:00:30Z"] * 2
        # Deleted through one, it is gone for both.
        assert httpx.delete(control).status_code == 200
        for _ in range(4):
            assert httpx.get(f"{control}/clock").status_code == 404
            assert httpx.get(f"{base}/deepvue/openapi.json").status_code == 404

"""``GET /_sim/snapshot`` from a simulator on memory, ``POST /_sim/snapshot`` into a fresh
one on each backend: every batch, the token, the clock, the options and the next id answer
the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from tests.conftest import START
from tests.providers.deepvue.conftest import BASE, advance, auth
from tests.providers.deepvue.test_batches import status, submit

CSV = b"vpa\nrahul@okaxis\npriya@oksbi\n"
SIM = "http://testserver/_sim"


@pytest.fixture
def source() -> Iterator[TestClient]:
    app = create_app(Settings(seed=7), clock=ManualClock(START))
    with TestClient(app, base_url=BASE) as client:
        yield client


def test_a_snapshot_from_memory_answers_the_same_on_each_backend(
    source: TestClient, store_url: str
) -> None:
    headers = auth(source)
    change = {"provider": "deepvue", "options": {"processing_seconds": 100}}
    assert source.post(f"{SIM}/options", json=change).status_code == 200
    early = str(submit(source, headers, CSV)["request_id"])
    advance(source, 60)
    late = str(submit(source, headers, CSV)["request_id"])
    advance(source, 50)
    snapshot = source.get(f"{SIM}/snapshot").json()

    target = create_app(Settings(seed=7, store=store_url), clock=ManualClock(START))
    with TestClient(target, base_url=BASE) as restored:
        loaded = restored.post(f"{SIM}/snapshot", json=snapshot)
        assert loaded.status_code == 200, loaded.text
        for client in (source, restored):
            assert client.get(f"{SIM}/clock").json()["now"] == "2026-03-09T08:15:58Z"
            options = client.get(f"{SIM}/options").json()["deepvue"]
            assert options["processing_seconds"] == 100
        # The same token; the early batch done, the late one not yet, on both.
        for client in (source, restored):
            assert status(client, headers, early)["status"] == 200
            assert status(client, headers, late)["status"] == 201
        url = str(status(restored, headers, early)["batch_output_file_url"])
        assert restored.get(url).text == source.get(url).text
        # The next id is the same on both: the counters came along.
        assert (
            submit(restored, headers, CSV)["request_id"]
            == submit(source, headers, CSV)["request_id"]
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "not a bulksim snapshot: bulksim_snapshot: Field required"),
        ({"bulksim_snapshot": 1, "seed": 7, "state": {}, "store": {}}, "not a bulksim snapshot"),
    ],
)
def test_a_body_that_is_not_a_snapshot_is_a_400(
    deepvue: TestClient, body: dict[str, object], message: str
) -> None:
    response = deepvue.post(f"{SIM}/snapshot", json=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_a_snapshot_of_another_seed_is_refused(source: TestClient, deepvue: TestClient) -> None:
    snapshot = {**source.get(f"{SIM}/snapshot").json(), "seed": 8}
    response = deepvue.post(f"{SIM}/snapshot", json=snapshot)
    assert response.status_code == 400
    assert "taken with seed 8; this simulator runs seed 7" in response.json()["error"]

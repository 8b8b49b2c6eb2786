"""A snapshot of a simulator on memory, loaded into one on SQLite and one on Redis: every seeded
object and every object made through the four providers' APIs answers byte for byte the same,
and one-shot resources keep their state (a used fileId stays refused, an unused one works once).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from simulator.providers.check.models import KEYS_BY_PLAN
from simulator.providers.deepvue.models import TEST_CLIENTS as DEEPVUE_CLIENTS
from simulator.providers.helloatlas.models import TEST_CLIENTS as HELLOATLAS_CLIENTS
from simulator.providers.passcreator.models import TEST_ACCOUNTS
from tests.conftest import START, store_url_maker
from tests.providers.check.test_batches import SEED_DONE, SEED_FILE, SEED_RUNNING
from tests.providers.helloatlas.conftest import EXAMPLE_BATCH, SEED_BATCH
from tests.providers.passcreator.conftest import DAVID, RAY, SEED_PROCESS

CHECK = {"Authorization": f"Bearer {KEYS_BY_PLAN['pro']}"}
PASSCREATOR = {"Authorization": TEST_ACCOUNTS[0].api_key}
TEMPLATE = TEST_ACCOUNTS[0].templates[0].identifier
CLAIMS = b"content\nThe sky is green.\nWater boils at 100 C at sea level.\n"
VPAS = b"vpa\nrahul@okaxis\npriya@oksbi\n"
Call = tuple[str, str, dict[str, str], dict[str, str]]


@contextmanager
def simulator(store: str = "memory") -> Iterator[TestClient]:
    app = create_app(Settings(seed=7, store=store), clock=ManualClock(START))
    with TestClient(app, base_url="http://testserver") as client:
        yield client
    assert not app.state.sim.crashes, list(app.state.sim.crashes)


def ok(response: httpx2.Response, status: int = 200) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    return body[0] if isinstance(body, list) else body  # type: ignore[no-any-return]


def advance(client: TestClient, seconds: float) -> None:
    ok(client.post("/_sim/clock/advance", json={"seconds": seconds}))


def a_morning_on_four_providers(client: TestClient) -> tuple[list[Call], dict[str, str]]:
    """Objects made through each provider's API, part of the way through their processing;
    the reads that show every seeded and made object, and the Check fileIds."""
    # Passcreator: a bulk create, polled half way, and a seeded pass changed.
    bulk = [{"templateId": TEMPLATE, "userProvidedId": f"m-{n}", "batch": "snap"} for n in "abc"]
    made = ok(client.post("/passcreator/api/v3/pass", json={"data": bulk}, headers=PASSCREATOR))
    process = str(made["data"]["identifier"])  # type: ignore[index]
    change = {"data": {"firstname": "Dave"}}
    ok(client.patch(f"/passcreator/api/v3/pass/{DAVID}", json=change, headers=PASSCREATOR))
    # HelloAtlas: a batch of three documents.
    who = HELLOATLAS_CLIENTS[0]
    minted = client.post(
        "/helloatlas/v1/bulk/authtoken",
        headers={"Client-Id": who.client_id, "Client-Secret": who.client_secret},
    )
    atlas = {"Token": str(ok(minted, 201)["access_token"])}
    urls = [
        {"file_url": f"https://docs.example.com/uploads/{name}", "document_id": str(n)}
        for n, name in enumerate(["aadhaar.jpg", "pan.jpg", "gst_fail.pdf"], 1)
    ]
    upload = {"product_type": "POC_CDL", "file_urls": urls}
    batch = str(
        ok(client.post("/helloatlas/v1/bulk/multiupload", json=upload, headers=atlas), 201)[
            "batch_id"
        ]
    )
    # Check: a batch from a fileId, a batch of items, and a fileId left unused.
    files = {}
    for name in ("used", "unused"):
        sent = {"file": (f"{name}.csv", CLAIMS, "text/csv")}
        files[name] = str(
            ok(client.post("/check/v1/batch/upload", headers=CHECK, files=sent))["fileId"]
        )
    from_file = ok(
        client.post("/check/v1/batch", headers=CHECK, json={"fileId": files["used"]}), 202
    )
    from_items = ok(
        client.post(
            "/check/v1/batch", headers=CHECK, json={"items": [{"content": "a"}, {"content": "b"}]}
        ),
        202,
    )
    # Deepvue: a batch of VPAs.
    dv = DEEPVUE_CLIENTS[0]
    form = {"client_id": dv.client_id, "client_secret": dv.client_secret}
    token = ok(client.post("/deepvue/v1/authorize", data=form))["access_token"]
    deepvue = {"Authorization": f"Bearer {token}", "x-api-key": dv.client_secret}
    sent = {"batch_file": ("vpas.csv", VPAS, "text/csv")}
    request_id = str(
        ok(
            client.post("/deepvue/v1/verification/upi-basic/batch", headers=deepvue, files=sent),
            201,
        )["request_id"]
    )
    advance(client, 1)

    calls: list[Call] = [
        ("GET", f"/passcreator/api/v3/process/{SEED_PROCESS}", PASSCREATOR, {}),
        ("GET", f"/passcreator/api/v3/process/{process}", PASSCREATOR, {}),
        ("GET", f"/passcreator/api/v3/pass/{DAVID}", PASSCREATOR, {}),
        ("GET", f"/passcreator/api/v3/pass/{RAY}", PASSCREATOR, {}),
        ("GET", "/passcreator/api/v3/pass", PASSCREATOR, {}),
        ("GET", "/check/v1/batch", CHECK, {}),
        (
            "GET",
            "/deepvue/v1/verification/batch-processing-status",
            deepvue,
            {"request_id": request_id},
        ),
    ]
    for batch_id in (SEED_BATCH, EXAMPLE_BATCH, batch):
        calls.append(("GET", "/helloatlas/v1/bulk/extracts", atlas, {"batch_id": batch_id}))
    for check_batch in (SEED_DONE, SEED_RUNNING, str(from_file["id"]), str(from_items["id"])):
        calls.append(("GET", f"/check/v1/batch/{check_batch}", CHECK, {}))
        calls.append(("GET", f"/check/v1/batch/{check_batch}/results", CHECK, {}))
    return calls, files


def answers(client: TestClient, calls: list[Call], files: dict[str, str]) -> list[str]:
    """Every read, then the reads again once every batch is done, then the one-shot files:
    the used one refused, the unused one and the seeded one taken once each."""
    texts = []
    for _ in range(2):
        for method, path, headers, params in calls:
            response = client.request(method, path, headers=headers, params=params)
            assert response.status_code == 200, (path, response.text)
            texts.append(f"{path} {response.status_code} {response.text}")
        advance(client, 120)
    for fid, statuses in (
        (files["used"], [409]),
        (files["unused"], [202, 409]),
        (SEED_FILE, [202, 409]),
    ):
        for status in statuses:
            response = client.post("/check/v1/batch", headers=CHECK, json={"fileId": fid})
            assert response.status_code == status, response.text
            texts.append(f"{fid} {response.status_code} {response.text}")
    return texts


@pytest.mark.parametrize("target", ["sqlite:///{tmp}/state.db", "redis"], ids=["sqlite", "redis"])
def test_a_snapshot_from_memory_answers_the_same_on_sqlite_and_redis(
    target: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with simulator() as source:
        calls, files = a_morning_on_four_providers(source)
        snapshot = ok(source.get("/_sim/snapshot"))
        with simulator(store_url_maker(target, request, tmp_path_factory)()) as restored:
            loaded = restored.post("/_sim/snapshot", json=snapshot)
            assert loaded.status_code == 200, loaded.text
            expected = answers(source, calls, files)
            assert answers(restored, calls, files) == expected
    # The reads caught the made objects part way, and again when done.
    half = len(calls)
    moved = [a != b for a, b in zip(expected[:half], expected[half : 2 * half], strict=True)]
    # Passcreator's seeded process, Check's listing, Deepvue's batch, HelloAtlas's new batch,
    # Check's seeded running batch and both new ones.
    assert [n for n, changed in enumerate(moved) if changed] == [0, 5, 6, 9, 12, 13, 14, 15, 16, 17]
